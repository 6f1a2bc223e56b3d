"""Post-renewal verification against a real local TLS server that reloads its certificate."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from datetime import timedelta
from pathlib import Path

from rotator.apply.verify import probe_name, served_serial, verify
from rotator.model import Reference
from tests.support import factory as f


class Gateway:
    """A TLS server that loads its certificate files on every handshake, like a gateway
    picking up a Secret pushed over SDS; ``serve_new_after`` delays the switch."""

    def __init__(self, tmp: Path, old: f.Leaf, new: f.Leaf | None = None, serve_new_after: int | None = None) -> None:
        self.tmp, self.old, self.new, self.after = tmp, old, new, serve_new_after
        self.handshakes = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _current(self) -> f.Leaf:
        if self.new is not None and self.after is not None and self.handshakes > self.after:
            return self.new
        return self.old

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.handshakes += 1
            leaf = self._current()
            (self.tmp / "c.pem").write_bytes(leaf.cert_pem())
            (self.tmp / "k.pem").write_bytes(leaf.key_pem())
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tmp / "c.pem"), str(self.tmp / "k.pem"))
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    def close(self) -> None:
        self.sock.close()


REF = Reference(
    "networking.istio.io",
    "Gateway",
    "istio-system",
    "gw",
    "https",
    443,
    "SIMPLE",
    ("app.example.com", "*.api.example.com", "*"),
)


def serial(leaf: f.Leaf) -> str:
    return format(leaf.cert.serial_number, "x")


def test_probe_names_for_wildcards_and_catch_all() -> None:
    assert probe_name("app.example.com") == "app.example.com"
    assert probe_name("ns/*.api.example.com") == "rotator-verify.api.example.com"
    assert probe_name("*") is None


def test_the_new_certificate_is_seen_once_the_gateway_picks_it_up(tmp_path: Path) -> None:
    old, new = f.make_leaf(["app.example.com"]), f.make_leaf(["app.example.com"])
    gw = Gateway(tmp_path, old, new, serve_new_after=3)
    try:
        address = f"127.0.0.1:{gw.port}"
        assert served_serial(address, "app.example.com") == serial(old)
        sleeps: list[float] = []
        found = verify(
            "istio-system",
            "app-tls",
            serial(new),
            [REF],
            f"127.0.0.1:{gw.port}",
            timedelta(seconds=30),
            timedelta(seconds=2),
            sleep=sleeps.append,
        )
        assert found == []
        assert sleeps  # it had to retry: the first answers were the old certificate
    finally:
        gw.close()


def test_a_gateway_that_keeps_the_old_certificate_is_reported(tmp_path: Path) -> None:
    old, new = f.make_leaf(["app.example.com"]), f.make_leaf(["app.example.com"])
    gw = Gateway(tmp_path, old)
    clock = {"t": 0.0}
    try:
        found = verify(
            "istio-system",
            "app-tls",
            serial(new),
            [REF],
            "127.0.0.1:{port}".replace("{port}", str(gw.port)),
            timedelta(seconds=10),
            timedelta(seconds=2),
            sleep=lambda s: clock.__setitem__("t", clock["t"] + s),
            monotonic=lambda: clock["t"],
        )
        assert {x.code for x in found} == {"not-served"}
        assert len(found) == 2  # app.example.com and a name under *.api.example.com; never '*'
        assert all(serial(old) in x.message and x.object is not None and x.object.name == "app-tls" for x in found)
    finally:
        gw.close()


def test_nothing_listening_is_reported_too() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.monotonic()
    found = verify("ns", "s", "abc", [REF], f"127.0.0.1:{port}", timedelta(seconds=0), timedelta(seconds=1))
    assert found and "serves nothing" in found[0].message and time.monotonic() - t < 5


def test_an_open_not_served_alert_is_reprobed_each_pass(tmp_path: Path) -> None:
    """It stays open while the gateway serves another serial, and clears once it serves ours."""
    from rotator.apply.verify import still_not_served
    from rotator.config.load import parse_config

    served, current = f.make_leaf(["app.example.com"]), f.make_leaf(["app.example.com"])
    gw = Gateway(tmp_path, served)
    try:
        config = parse_config({"verify": {"enabled": True, "address": f"127.0.0.1:{gw.port}"}})
        result = f.run(
            f.ingress(), f.gateway("gw", [f.server(["app.example.com"], "app-tls")]), f.secret("app-tls", leaf=current)
        )
        alerts = {
            "rotator/prod/not-served/istio-system/app-tls": {
                "severity": "error",
                "class": "tls-not-served",
                "target": "istio-system/app-tls",
            }
        }
        (still,) = still_not_served(result, alerts, config.verify)
        assert still.code == "not-served" and serial(served) in still.message
        fixed = f.run(
            f.ingress(), f.gateway("gw", [f.server(["app.example.com"], "app-tls")]), f.secret("app-tls", leaf=served)
        )
        assert still_not_served(fixed, alerts, config.verify) == []  # now served: the alert may resolve
    finally:
        gw.close()
