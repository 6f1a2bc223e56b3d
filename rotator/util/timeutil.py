"""Durations, percentages and points in time as users write them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(w|d|h|m|s)")
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def parse_duration(text: str) -> timedelta:
    """Go-style durations plus days and weeks: ``720h``, ``30d``, ``1h30m``, ``2w``."""
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for m in _DURATION.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s):
        raise ValueError(f"invalid duration {text!r}: use a number with a unit w, d, h, m or s, e.g. 720h or 30d")
    try:
        return timedelta(seconds=total)
    except OverflowError:
        # Callers (config validation, Secret annotations) only expect ValueError; an
        # absurd value must become a finding or a config error, never a crash.
        raise ValueError(f"invalid duration {text!r}: too large") from None


@dataclass(frozen=True)
class RenewBefore:
    """How long before expiry to renew: a fixed duration or a fraction of the lifetime."""

    duration: timedelta | None = None
    fraction: float | None = None

    def amount(self, lifetime: timedelta) -> timedelta:
        if self.duration is not None:
            return self.duration
        return lifetime * (self.fraction if self.fraction is not None else 1 / 3)

    def describe(self, lifetime: timedelta) -> str:
        if self.duration is not None:
            return f"renew-before {format_duration(self.duration)}"
        pct = (self.fraction if self.fraction is not None else 1 / 3) * 100
        return f"renew-before {pct:.4g}% of the {format_duration(lifetime)} lifetime"


DEFAULT_RENEW_BEFORE = RenewBefore(fraction=1 / 3)


def parse_renew_before(text: str) -> RenewBefore:
    m = _PERCENT.match(text)
    if m:
        pct = float(m.group(1))
        if not 0 < pct < 100:
            raise ValueError(f"invalid percentage {text!r}: must be between 0 and 100 (exclusive)")
        return RenewBefore(fraction=pct / 100)
    d = parse_duration(text)
    if d <= timedelta(0):
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return RenewBefore(duration=d)


def format_duration(d: timedelta) -> str:
    secs = int(d.total_seconds())
    sign = "-" if secs < 0 else ""
    secs = abs(secs)
    days, rem = divmod(secs, 86400)
    hours, rem = divmod(rem, 3600)
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    minutes = rem // 60
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    return f"{sign}{minutes}m" if minutes else f"{sign}{rem % 60}s"


def parse_when(text: str, now: datetime) -> datetime:
    """``--at``: an ISO date or date-time, or ``+30d`` / ``-2h`` relative to ``now``."""
    s = text.strip()
    if not s:
        raise ValueError("empty time: use an ISO date (2026-12-01) or a relative time (+30d)")
    if s[:1] in "+-" and len(s) > 1:
        delta = parse_duration(s[1:])
        try:
            return now + delta if s[0] == "+" else now - delta
        except OverflowError:
            raise ValueError(f"invalid time {text!r}: out of range") from None
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {text!r}: use an ISO date (2026-12-01), a date-time (2026-12-01T12:00:00Z) "
            "or a relative time (+30d, -12h)"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def rfc3339(value: datetime) -> str:
    """RFC 3339 UTC with a four-digit year (strftime's %Y drops leading zeros on Linux)."""
    v = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_fields(expr: str) -> dict[str, str]:
    """A standard 5-field crontab line as APScheduler ``CronTrigger`` fields.

    Day-of-week numbers follow crontab (0 and 7 are Sunday), not APScheduler 3's own
    numbering (0 is Monday), so ``0 3 * * 1`` runs on Mondays as in any crontab. Raises
    ValueError naming the problem.
    """
    values = expr.split()
    if len(values) != 5:
        raise ValueError(f"crontab {expr!r}: expected 5 fields (minute hour day month weekday), got {len(values)}")
    minute, hour, day, month, weekday = values
    return {"minute": minute, "hour": hour, "day": day, "month": month, "day_of_week": _cron_weekdays(weekday, expr)}


def _cron_weekdays(field: str, expr: str) -> str:
    if not any(ch.isdigit() for ch in field):
        return field  # *, names (mon-fri): the same in both
    days: set[int] = set()
    for part in field.split(","):
        rng, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1
        if step_text and not step_text.isdigit():
            raise ValueError(f"crontab {expr!r}: bad step in weekday field {field!r}")
        if rng == "*":
            lo, hi = 0, 6
        elif "-" in rng:
            a, _, b = rng.partition("-")
            lo, hi = _weekday(a, expr), _weekday(b, expr)
        else:
            lo = _weekday(rng, expr)
            hi = 6 if step_text else lo
        if hi < lo:
            hi += 7  # fri-mon wraps over the weekend
        days |= {d % 7 for d in range(lo, hi + 1, step)}
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _weekday(text: str, expr: str) -> int:
    if text.isdigit() and 0 <= int(text) <= 7:
        return int(text) % 7
    if text.lower()[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(text.lower()[:3])
    raise ValueError(f"crontab {expr!r}: {text!r} is not a weekday (0-7 or sun..sat)")


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``:9090``, ``[::]:9090``) as a bind address; ValueError naming the problem."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen address {text!r}: expected HOST:PORT with a port from 0 to 65535, e.g. 0.0.0.0:9090")
    host = host.strip("[]")
    if any(ch.isspace() for ch in host) or "/" in host:
        raise ValueError(f"listen address {text!r}: {host!r} is not a host name or IP address")
    return host or "0.0.0.0", int(port)
