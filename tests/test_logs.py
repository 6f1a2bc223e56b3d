"""Logging set-up: JSON and console output, and that no secret material reaches a log line."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from rotator.model import Secret
from rotator.util import logs, pki

TOKEN = "tok-5f1c2e9a7b3d4c8e"
ROUTING_KEY = "rk-0a9b8c7d6e5f4a3b"
PASSWORD = "pw-correct-horse-battery"
NESTED_PASSWORD = "pw-nested-3e8f1a"


@pytest.fixture(scope="module")
def pems() -> list[str]:
    """Real keys in the encodings a Secret may hold: PKCS#8 EC, PKCS#1 RSA."""
    return [
        pki.key_pem(pki.new_key("ecdsa-p256")).decode(),
        pki.key_pem(pki.new_key("rsa-2048"), pkcs1=True).decode(),
    ]


def body_lines(pem: str) -> list[str]:
    lines = [ln for ln in pem.splitlines() if ln and not ln.startswith("-----")]
    assert len(lines) >= 2
    return lines


def assert_clean(out: str, pems: list[str]) -> None:
    for pem in pems:
        for line in body_lines(pem):
            assert line not in out
    for value in (TOKEN, ROUTING_KEY, PASSWORD, NESTED_PASSWORD):
        assert value not in out


@pytest.fixture
def capture() -> Iterator[io.StringIO]:
    buf = io.StringIO()
    logs.configure(level="debug", fmt="json", stream=buf)
    yield buf
    structlog.reset_defaults()


def records(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def emit_secrets(log: Any, pems: list[str]) -> None:
    ec_pem, rsa_pem = pems
    log.info(f"loaded key {ec_pem} for app-tls", secret_name="app-tls", namespace="istio-system")
    log.info(
        "nested",
        secret_name="app-tls",
        details={"data": {"tls.key": rsa_pem, "tls.crt": "CERT"}, "auth": {"password": NESTED_PASSWORD}},
    )
    log.info("bytes", secret_name="app-tls", raw=ec_pem.encode(), chunks=[rsa_pem.encode(), b"ok-bytes"])
    log.warning("creds", secret_name="app-tls", routing_key=ROUTING_KEY, token=TOKEN, password=PASSWORD)
    log.info("casing", Token=TOKEN, PASSWORD=PASSWORD)


def test_json_output_has_no_secret_material(capture: io.StringIO, pems: list[str]) -> None:
    emit_secrets(logs.get_logger(), pems)
    out = capture.getvalue()
    assert_clean(out, pems)

    recs = records(capture)
    assert [r["event"].split()[0] for r in recs] == ["loaded", "nested", "bytes", "creds", "casing"]
    first, nested, raw, creds, casing = recs
    # the message keeps its words, only the key is cut out
    assert first["event"].startswith("loaded key [redacted private key]")
    assert first["event"].endswith("for app-tls")
    assert first["secret_name"] == "app-tls"
    assert first["namespace"] == "istio-system"
    assert first["level"] == "info"
    assert "timestamp" in first
    assert nested["details"]["data"]["tls.crt"] == "CERT"
    assert "[redacted private key]" in nested["details"]["data"]["tls.key"]
    assert nested["details"]["auth"]["password"] == logs.REDACTED
    assert "[redacted private key]" in raw["raw"]
    assert raw["chunks"][1] == "ok-bytes"
    assert creds["secret_name"] == "app-tls"
    assert creds["level"] == "warning"
    assert creds["routing_key"] == creds["token"] == creds["password"] == logs.REDACTED
    assert casing["Token"] == casing["PASSWORD"] == logs.REDACTED


def test_key_in_an_exception_traceback_is_redacted(capture: io.StringIO, pems: list[str]) -> None:
    log = logs.get_logger()
    try:
        raise ValueError(f"cannot parse {pems[0]}")
    except ValueError:
        log.exception("parse failed", secret_name="app-tls")
    out = capture.getvalue()
    assert_clean(out, pems)
    (rec,) = records(capture)
    assert "ValueError: cannot parse [redacted private key]" in rec["exception"]
    assert rec["secret_name"] == "app-tls"


def test_key_inside_objects_rendered_by_repr_is_redacted(capture: io.StringIO, pems: list[str]) -> None:
    log = logs.get_logger()
    secret = Secret("istio-system", "app-tls", "kubernetes.io/tls", {"tls.key": pems[1].encode()})
    log.info("secret", secret=secret, error=ValueError(pems[0]), keys={pems[0]}, when=3.5, n=None)
    out = capture.getvalue()
    assert_clean(out, pems)
    (rec,) = records(capture)
    assert "name='app-tls'" in rec["secret"]
    assert "[redacted private key]" in rec["error"]
    assert rec["when"] == 3.5
    assert rec["n"] is None


def test_console_format(pems: list[str]) -> None:
    buf = io.StringIO()
    logs.configure(level="info", fmt="console", stream=buf)
    try:
        emit_secrets(logs.get_logger(), pems)
        logs.get_logger().debug("hidden-debug-event")
    finally:
        structlog.reset_defaults()
    out = buf.getvalue()
    assert_clean(out, pems)
    assert "\x1b[" not in out  # no colours when the stream is not a terminal
    lines = out.splitlines()
    assert "loaded key [redacted private key]" in out
    assert "secret_name=app-tls" in out
    assert "namespace=istio-system" in out
    assert f"token={logs.REDACTED}" in out
    assert "hidden-debug-event" not in out
    for event in ("nested", "bytes", "creds", "casing"):
        assert any(event in ln for ln in lines)
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0])


def test_auto_format_is_json_when_not_a_terminal() -> None:
    buf = io.StringIO()
    logs.configure(fmt="auto", stream=buf)
    try:
        logs.get_logger().info("hello", secret_name="app-tls", token=TOKEN)
    finally:
        structlog.reset_defaults()
    (rec,) = records(buf)
    assert rec["event"] == "hello"
    assert rec["secret_name"] == "app-tls"
    assert rec["token"] == logs.REDACTED


def test_level_filters() -> None:
    buf = io.StringIO()
    logs.configure(level="warning", fmt="json", stream=buf)
    try:
        log = logs.get_logger()
        log.info("quiet")
        log.warning("loud")
        log.error("louder")
    finally:
        structlog.reset_defaults()
    assert [r["event"] for r in records(buf)] == ["loud", "louder"]


def test_redact_processor_directly(pems: list[str]) -> None:
    event: dict[str, Any] = {
        "event": "x",
        "hmac_key": "h",
        "list": [{"tsig_secret": "t", "keep": 1}, ("tuple", pems[0])],
        "truncated": "-----BEGIN PRIVATE KEY-----\nMIIEvQ",
        "count": 2,
        "flag": True,
    }
    out = logs.redact(None, "info", event)
    assert out["hmac_key"] == logs.REDACTED
    assert out["list"] == [{"tsig_secret": logs.REDACTED, "keep": 1}, ["tuple", "[redacted private key]\n"]]
    assert out["truncated"] == "[redacted private key]"
    assert out["count"] == 2
    assert out["flag"] is True


def test_suffix_named_credentials_are_redacted_but_operational_fields_kept() -> None:
    from rotator.util.logs import is_sensitive

    for name in ("api_token", "PagerDuty_Routing_Key", "eab_hmac", "db_password", "Authorization", "acme_private_key"):
        assert is_sensitive(name), name
    for name in ("key_type", "secret", "namespace", "dedup_key", "serial", "not_after"):
        assert not is_sensitive(name), name


def test_every_line_of_a_pass_carries_its_run_id_even_from_worker_threads(capsys) -> None:  # type: ignore[no-untyped-def]
    import contextvars
    import json
    from concurrent.futures import ThreadPoolExecutor

    from rotator.util import logs

    logs.configure("info", "json")
    run_id = logs.new_run_id()
    log = logs.get_logger()
    log.info("main thread")
    ctx = contextvars.copy_context()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda i: ctx.copy().run(log.info, "worker", n=i), range(2)))
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert len(lines) == 3 and {x["run_id"] for x in lines} == {run_id}
