"""Durations and renew-before values as users write them: properties first, then the
examples the docs promise."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rotator.config.load import ConfigError, parse_config
from rotator.util.timeutil import (
    DEFAULT_RENEW_BEFORE,
    RenewBefore,
    format_duration,
    parse_duration,
    parse_renew_before,
    parse_when,
)
from tests.support import factory as f

UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_DAYS = 10**6  # far above any certificate lifetime, far below timedelta's limit

seconds = st.integers(min_value=0, max_value=MAX_DAYS * 86400)
durations = seconds.map(lambda s: timedelta(seconds=s))
# Go-style pieces: "12h", "30m"; any order, units may repeat, upper case allowed.
pieces = st.lists(
    st.tuples(st.integers(min_value=0, max_value=10**5), st.sampled_from(sorted(UNITS))), min_size=1, max_size=6
)


def canonical(days: int, hours: int, minutes: int, secs: int) -> timedelta:
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=secs)


# --- parse_duration / format_duration ---------------------------------------------------


@given(pieces, st.booleans(), st.sampled_from(["", " ", "\t"]))
def test_parse_duration_sums_its_pieces(parts: list[tuple[int, str]], upper: bool, pad: str) -> None:
    text = "".join(f"{n}{u}" for n, u in parts)
    text = pad + (text.upper() if upper else text) + pad
    assert parse_duration(text) == timedelta(seconds=sum(n * UNITS[u] for n, u in parts))


@given(durations)
@example(timedelta(0))
@example(timedelta(seconds=59))
@example(timedelta(days=1, minutes=5))
def test_format_then_parse_loses_at_most_the_dropped_unit(d: timedelta) -> None:
    """``format_duration`` is for messages: it keeps two units and truncates the rest."""
    text = format_duration(d)
    back = parse_duration(text)
    lost = d - back
    assert timedelta(0) <= lost
    if d >= timedelta(days=1):
        assert lost < timedelta(hours=1)
    elif d >= timedelta(minutes=1):
        assert lost < timedelta(minutes=1)
    else:
        assert lost == timedelta(0)


@given(durations)
def test_format_is_a_fixed_point_after_one_round_trip(d: timedelta) -> None:
    text = format_duration(d)
    assert format_duration(parse_duration(text)) == text


@given(
    st.one_of(
        st.builds(canonical, st.integers(1, MAX_DAYS), st.integers(0, 23), st.just(0), st.just(0)),
        st.builds(canonical, st.just(0), st.integers(0, 23), st.integers(0, 59), st.just(0)),
        st.builds(canonical, st.just(0), st.just(0), st.just(0), st.integers(0, 59)),
    )
)
def test_round_trip_is_exact_for_what_format_can_express(d: timedelta) -> None:
    assert parse_duration(format_duration(d)) == d


@given(st.text(max_size=20))
@example("9" * 400 + "s")
@example("99999999999d")
def test_parse_duration_raises_only_value_error(text: str) -> None:
    try:
        d = parse_duration(text)
    except ValueError:
        return
    assert d >= timedelta(0)


@pytest.mark.parametrize("text", ["", "  ", "30", "d", "30x", "1h 30m", "-5d", "1.h", "30d!", "1ms", "99999999999d"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("720h", timedelta(days=30)),
        ("30d", timedelta(days=30)),
        ("1h30m", timedelta(minutes=90)),
        ("2w", timedelta(days=14)),
        ("1.5h", timedelta(minutes=90)),
        ("90s", timedelta(seconds=90)),
    ],
)
def test_documented_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("d", "text"),
    [
        (timedelta(days=30), "30d"),
        (timedelta(days=1, hours=2, minutes=3), "1d2h"),
        (timedelta(hours=2, minutes=3, seconds=4), "2h3m"),
        (timedelta(minutes=5), "5m"),
        (timedelta(seconds=7), "7s"),
        (timedelta(0), "0s"),
        (-timedelta(days=2), "-2d"),
    ],
)
def test_format_examples(d: timedelta, text: str) -> None:
    assert format_duration(d) == text


# --- parse_renew_before -----------------------------------------------------------------

# Percentages with up to two decimals, written the way users write them.
percent_in_range = st.integers(min_value=1, max_value=9999).map(lambda n: (n / 100, f"{n // 100}.{n % 100:02d}%"))


@given(percent_in_range, st.sampled_from(["", " "]))
def test_percentages_strictly_between_0_and_100_are_fractions(pct: tuple[float, str], pad: str) -> None:
    value, text = pct
    rb = parse_renew_before(pad + text + pad)
    assert rb.duration is None
    assert rb.fraction is not None
    assert rb.fraction == pytest.approx(value / 100)
    assert 0 < rb.fraction < 1


@given(st.one_of(st.just(0), st.integers(min_value=100, max_value=10**9)))
def test_percentages_outside_the_range_are_rejected(n: int) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        parse_renew_before(f"{n}%")


@given(st.integers(min_value=1, max_value=MAX_DAYS * 86400))
def test_positive_durations_are_durations(secs: int) -> None:
    rb = parse_renew_before(f"{secs}s")
    assert rb == RenewBefore(duration=timedelta(seconds=secs))
    assert rb.amount(timedelta(days=1)) == timedelta(seconds=secs)  # independent of the lifetime


@pytest.mark.parametrize("text", ["0s", "0h", "0d", "0.0000001s"])
def test_zero_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="positive"):
        parse_renew_before(text)


@given(st.text(max_size=12))
@example("99999999999d")
@example("9" * 400 + "%")
def test_parse_renew_before_raises_only_value_error(text: str) -> None:
    try:
        rb = parse_renew_before(text)
    except ValueError:
        return
    assert (rb.duration is None) != (rb.fraction is None)
    assert rb.duration is None or rb.duration > timedelta(0)
    assert rb.fraction is None or 0 < rb.fraction < 1


@given(percent_in_range, st.integers(min_value=1, max_value=3650 * 86400))
def test_a_percentage_is_always_inside_the_lifetime(pct: tuple[float, str], lifetime_s: int) -> None:
    lifetime = timedelta(seconds=lifetime_s)
    amount = parse_renew_before(pct[1]).amount(lifetime)
    assert timedelta(0) <= amount <= lifetime


@given(st.integers(min_value=1, max_value=3650 * 86400))
def test_default_is_a_third_of_the_lifetime(lifetime_s: int) -> None:
    lifetime = timedelta(seconds=lifetime_s)
    assert DEFAULT_RENEW_BEFORE.amount(lifetime) == lifetime / 3
    assert RenewBefore().amount(lifetime) == lifetime / 3


def test_describe() -> None:
    assert parse_renew_before("720h").describe(timedelta(days=90)) == "renew-before 30d"
    assert parse_renew_before("50%").describe(timedelta(days=90)) == "renew-before 50% of the 90d lifetime"


def test_oversized_config_value_is_a_config_error() -> None:
    """Before the fix this escaped pydantic as an OverflowError traceback."""
    with pytest.raises(ConfigError, match=r"renewal\.renew_before"):
        parse_config({"renewal": {"renew_before": "99999999999d"}})


# --- parse_when ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+30d", f.t(30)),
        ("-12h", f.NOW - timedelta(hours=12)),
        ("2026-12-01", f.t(183)),
        ("2026-06-01T12:00:00Z", f.NOW + timedelta(hours=12)),
        ("2026-06-01T12:00:00", f.NOW + timedelta(hours=12)),
    ],
)
def test_parse_when(text: str, expected: object) -> None:
    assert parse_when(text, f.NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "+", "+5", "2026-13-01"])
def test_parse_when_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_when(text, f.NOW)


@pytest.mark.parametrize(
    "expr,days",
    [
        ("0 3 * * 1", "mon"),
        ("0 3 * * 0", "sun"),
        ("0 3 * * 7", "sun"),
        ("0 3 * * 1-5", "mon,tue,wed,thu,fri"),
        ("0 3 * * 5-1", "sun,mon,fri,sat"),
        ("0 3 * * */2", "sun,tue,thu,sat"),
        ("0 3 * * 0,6", "sun,sat"),
        ("0 3 * * mon-fri", "mon-fri"),
        ("0 3 * * *", "*"),
    ],
)
def test_crontab_weekdays_mean_what_they_mean_in_crontab(expr: str, days: str) -> None:
    """APScheduler 3 counts 0 as Monday; a crontab counts it as Sunday."""
    from rotator.util.timeutil import crontab_fields

    assert crontab_fields(expr)["day_of_week"] == days


@pytest.mark.parametrize(
    "text,ok", [("0.0.0.0:9090", ("0.0.0.0", 9090)), (":8080", ("0.0.0.0", 8080)), ("[::]:9", ("::", 9))]
)
def test_listen_addresses(text: str, ok: tuple[str, int]) -> None:
    from rotator.util.timeutil import parse_listen

    assert parse_listen(text) == ok
    for bad in ("9090", "host:", "host:70000", "a b:1"):
        with pytest.raises(ValueError):
            parse_listen(bad)
