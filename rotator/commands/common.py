"""What every command shares: logging and colour from the global flags, the API client
from --kubeconfig/--context (with a message a person can act on when there is none),
SIGTERM as a clean stop, the progress line, and the one-line error exit."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO


def selection_of(args: argparse.Namespace) -> Any:
    """The Selection the flags ask for, or an exit code after a clear message."""
    from rotator.plan.selection import Selection, parse_selector

    if args.all_namespaces and args.namespace:
        return error("-n and -A: give one (-A is every namespace)")
    try:
        selector = parse_selector(args.selector) if args.selector else ()
    except ValueError as exc:
        return error(f"-l: {exc}")
    return Selection(namespace=None if args.all_namespaces else args.namespace, selector=selector)


class Terminated(BaseException):
    """SIGTERM (node drain, the Job's activeDeadlineSeconds): unwinds the pass so the
    Lease is released on the way out. A BaseException, so no per-credential guard
    swallows it."""


@contextlib.contextmanager
def terminate_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """While a writing pass runs: SIGTERM stops new issuance and writes (``stop``) and
    unwinds the main thread; renewal workers see ``stop`` at their next step."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield  # signals are only delivered to the main thread (tests call main() in others)
        return

    def handler(signum: int, frame: object) -> None:
        stop.set()
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


LEVELS = ("debug", "info", "warning", "error")


def check_log_level(args: argparse.Namespace, config: Any) -> str:
    """A person at a terminal reads the report, not log chatter: below warning only when
    asked (--log-level) or when logs go to a machine (JSON, as the CronJob runs)."""
    if args.log_level:
        return str(args.log_level)
    if args.quiet:
        return "error"
    level = str(config.logging.level)
    if args.log_format == "json":  # asked for machine logs on the command line
        return level
    return LEVELS[max(LEVELS.index(level), LEVELS.index("warning"))]


def color_of(args: argparse.Namespace) -> bool | None:
    """--color always/never, else None: a terminal decides, and NO_COLOR turns it off."""
    return {"always": True, "never": False}.get(getattr(args, "color", "auto"))


def silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def error(message: str) -> int:
    sys.stderr.write(f"rotator: error: {message}\n")
    return 3


def api_from_args(args: argparse.Namespace) -> Any:
    """A KubeAPI for the configured cluster, or an exit code after a clear message."""
    from rotator.kube.api import KubeAPI, connect

    missing = missing_kubeconfig(args.kubeconfig)
    if missing is not None:
        return error(missing)
    try:
        return KubeAPI(connect(args.kubeconfig, args.context))
    except Exception as exc:  # kubeconfig missing/invalid: the client raises several types
        return error(f"cannot configure the Kubernetes client: {exc}")


def missing_kubeconfig(explicit: str | None) -> str | None:
    """Say which file is missing, in kubectl's terms, before the client's "No configuration found"."""
    if explicit is not None:
        return None if os.path.isfile(explicit) else f"--kubeconfig {explicit}: no such file"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        return None  # in a pod: the service account
    env = os.environ.get("KUBECONFIG")
    if env:
        files = [p for p in env.split(os.pathsep) if p]
        if not any(os.path.isfile(p) for p in files):
            return f"$KUBECONFIG names no existing file ({env}); set it, or pass --kubeconfig"
        return None
    home = os.path.expanduser("~/.kube/config")
    if not os.path.isfile(home):
        return (
            f"no kubeconfig: $KUBECONFIG is not set and {home} does not exist; pass --kubeconfig, run in a pod, "
            "or use -f with manifests"
        )
    return None


class Phases:
    """One stderr line naming the phase a long pass is in (a terminal only, never with -q
    or machine logs); cleared before the report is printed."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.shown = False

    def __call__(self, phase: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\x1b[K{phase}…")
            self.stream.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


def progress(paths: list[str]):  # type: ignore[no-untyped-def]
    """A stderr progress line for long inputs on a terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None
    from rotator.discover.files import expand_paths

    try:
        files = expand_paths(paths)
    except Exception:
        return None
    if len(files) < 50:
        return None
    total = len(files)
    state = {"n": 0}

    def tick(name: str) -> None:
        state["n"] += 1
        sys.stderr.write(f"\rloading manifests: {state['n']}/{total}")
        if state["n"] == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return tick
