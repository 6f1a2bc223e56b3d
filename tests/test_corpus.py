"""Bad input never stops a pass: a corpus of real malformed material and generated
manifests, each next to a due credential that must still be planned for renewal.

The certificate and key corpus is `cryptography-vectors` (the test vectors of the
library rotator parses with): every file under `x509/` and `asymmetric/`, PEM and DER,
put in turn in `tls.crt`, `tls.key`, `ca.crt` and `cacert`. A case fails when the pass
raises (a crash), takes longer than HANG_SECONDS (a hang), or its `-o json` document is
not JSON.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cryptography_vectors
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rotator.config.load import parse_config
from rotator.discover.files import LoadResult, parse_text
from rotator.discover.wire.inventory import build_inventory
from rotator.pipeline import run_check
from rotator.report.document import to_document
from tests.support import factory as f

HANG_SECONDS = 10.0
SLOTS = ("tls.crt", "tls.key", "ca.crt", "cacert")
CONFIG = parse_config(
    {"issuers": {"internal": {"type": "ca", "secret": "rotator/internal-ca"}}, "rules": [{"issuer": "internal"}]}
)
NOW = f.NOW  # the factory's certificates are dated from it


def corpus_files() -> list[Path]:
    root = Path(cryptography_vectors.__file__).parent  # in .[dev]: a hard dependency of the suite
    return sorted(p for sub in ("x509", "asymmetric") for p in (root / sub).rglob("*") if p.is_file())


def neighbours() -> list[dict[str, Any]]:
    """The ingress, a Gateway with the victim (mTLS, so its CA is read) and a due credential."""
    due = f.make_leaf(["due.example.com"], nb=-80, na=5)
    servers = [
        f.server(["victim.example.com"], "victim-tls", mode="MUTUAL", name="https-victim"),
        f.server(["due.example.com"], "due-tls", port=8443, name="https-due"),
    ]
    return [f.ingress(), f.gateway("gw", servers), f.secret("due-tls", leaf=due)]


def victim(slot: str, payload: bytes, good: f.Leaf) -> list[dict[str, Any]]:
    if slot == "cacert":  # Istio reads the client CA from <name>-cacert when it exists
        return [
            f.secret("victim-tls", leaf=good),
            f.secret("victim-tls-cacert", data={"cacert": payload}, type_="Opaque"),
        ]
    data = {"tls.crt": good.cert_pem(), "tls.key": good.key_pem(), "ca.crt": good.cert_pem()}
    data[slot] = payload
    return [f.secret("victim-tls", data=data)]


class Hang(Exception):
    pass


@pytest.fixture
def alarm() -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise Hang()

    previous = signal.signal(signal.SIGALRM, fire)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def one_pass(objects: list[Any]) -> dict[str, Any]:
    """The offline pass as `rotator check -f … -o json` runs it: the loader, inventory and
    pipeline, and the report as a JSON round trip."""
    loaded = LoadResult()
    parse_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}), "corpus.json", loaded)
    inventory, findings = build_inventory(loaded.objects, default_namespace="default")
    result = run_check(inventory, CONFIG, NOW, findings)
    doc: dict[str, Any] = json.loads(json.dumps(to_document(result)))
    return doc


def check_case(objects: list[dict[str, Any]]) -> tuple[str, dict[str, Any] | None]:
    """("ok" | "crash: …" | "hang" | "non-json: …", document)."""
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS * 3)
    start = time.perf_counter()
    try:
        doc = one_pass(objects)
    except Hang:
        return "hang", None
    except (TypeError, ValueError) as exc:
        if "JSON" in str(exc) or "serializable" in str(exc):
            return f"non-json: {exc}", None
        return f"crash: {type(exc).__name__}: {exc}", None
    except Exception as exc:
        return f"crash: {type(exc).__name__}: {exc}", None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if time.perf_counter() - start > HANG_SECONDS:
        return "hang", doc
    return "ok", doc


def test_every_vector_in_every_slot_is_a_finding_never_a_failed_pass(alarm: None, capsys: Any) -> None:
    files = corpus_files()
    good = f.make_leaf(["victim.example.com"])
    base = neighbours()
    outcomes: dict[str, list[str]] = {}
    slowest = 0.0
    for path in files:
        payload = path.read_bytes()
        for slot in SLOTS:
            start = time.perf_counter()
            status, doc = check_case(base + victim(slot, payload, good))
            slowest = max(slowest, time.perf_counter() - start)
            case = f"{path.parent.name}/{path.name} in {slot}"
            if status == "ok":
                assert doc is not None
                due = next(c for c in doc["credentials"] if c["name"] == "due-tls")
                if due["action"] != "renew":
                    status = f"neighbour not planned: {due['action']}"
            outcomes.setdefault(status.split(":")[0], []).append(f"{case}: {status}")
    cases = sum(len(v) for v in outcomes.values())
    with capsys.disabled():
        print(
            f"\ncorpus: {len(files)} files x {len(SLOTS)} slots = {cases} cases; "
            + ", ".join(f"{k} {len(v)}" for k, v in sorted(outcomes.items()))
            + f"; slowest {slowest:.2f} s"
        )
    assert cases == len(files) * len(SLOTS) and len(files) > 1000
    bad = [c for k, v in outcomes.items() if k != "ok" for c in v]
    assert bad == [], bad[:20]


def test_the_four_reported_certificates_become_findings_on_their_secret() -> None:
    """The reproduction of the issue: each used to end the pass with exit 3."""
    root = Path(cryptography_vectors.__file__).parent / "x509" / "custom"
    good = f.make_leaf(["victim.example.com"])
    for name in (
        "invalid_version.pem",
        "two_basic_constraints.pem",
        "invalid_utf8_common_name.pem",
        "name_attribute_unsupported_tag.pem",
    ):
        for slot in ("tls.crt", "ca.crt"):
            doc = one_pass(neighbours() + victim(slot, (root / name).read_bytes(), good))
            creds = {(c["name"], c["role"]): c for c in doc["credentials"]}
            bad = creds[("victim-tls", "server" if slot == "tls.crt" else "client-ca")]
            messages = [x["message"] for x in bad["findings"] if x["code"] == "invalid-pem"]
            assert len(messages) == 1, (name, slot, bad["findings"])
            assert "cannot be fully decoded" in messages[0] or "does not parse" in messages[0]
            assert f"key {slot!r}" in messages[0]  # names the Secret and the key
            assert creds[("due-tls", "server")]["action"] == "renew"


# --- generated manifests -------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.just("x" * 1_000_000),  # a megabyte string
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)


def deep(n: int) -> Any:
    out: Any = "leaf"
    for _ in range(n):
        out = {"a": [out]}
    return out


def mutate(doc: dict[str, Any], path: list[str | int], value: Any) -> dict[str, Any]:
    """``doc`` with the value at ``path`` replaced (or the nearest container, when the path
    leaves the document): wrong types, nulls, numbers where hosts go."""
    doc = json.loads(json.dumps(doc))
    node: Any = doc
    for key in path[:-1]:
        nxt = (
            node[key]
            if isinstance(node, dict) and key in node
            else (node[key] if isinstance(node, list) and isinstance(key, int) and key < len(node) else None)
        )
        if nxt is None or not isinstance(nxt, dict | list):
            break
        node = nxt
    last = path[-1]
    if isinstance(node, dict):
        node[str(last)] = value
    elif isinstance(node, list) and node:
        node[int(last) % len(node) if isinstance(last, int) else 0] = value
    return doc


PATHS: list[list[str | int]] = [
    ["spec"],
    ["spec", "servers"],
    ["spec", "servers", 0],
    ["spec", "servers", 0, "hosts"],
    ["spec", "servers", 0, "hosts", 0],
    ["spec", "servers", 0, "tls"],
    ["spec", "servers", 0, "tls", "credentialName"],
    ["spec", "servers", 0, "tls", "mode"],
    ["spec", "servers", 0, "port"],
    ["spec", "servers", 0, "port", "number"],
    ["spec", "selector"],
    ["metadata"],
    ["metadata", "name"],
    ["metadata", "namespace"],
    ["kind"],
    ["apiVersion"],
    ["data"],
    ["data", "tls.crt"],
    ["type"],
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    which=st.integers(min_value=0, max_value=3),
    path=st.sampled_from(PATHS),
    value=st.one_of(json_values, st.integers(0, 300).map(deep)),
)
def test_generated_manifests_never_stop_the_pass(which: int, path: list[str | int], value: Any) -> None:
    objects = [*neighbours(), f.secret("victim-tls", leaf=f.make_leaf(["victim.example.com"]))]
    objects[which] = mutate(objects[which], path, value)  # the ingress, the Gateway or a Secret
    status, doc = check_case(objects)
    assert status == "ok", status
    assert doc is not None
    if which == 3:  # only the victim Secret broken: its neighbour is renewed all the same
        due = next(c for c in doc["credentials"] if c["name"] == "due-tls")
        assert due["action"] == "renew", due


def test_the_cli_prints_one_json_document_for_a_sample_of_the_corpus(tmp_path: Path) -> None:
    """The same cases through `rotator check --dry-run -f … -o json` itself: stdout is one
    JSON document and the exit code a Nagios one, never 3 (could not run)."""
    import io

    import yaml

    from rotator.cli import main

    files = corpus_files()[::40]  # every 40th file, in every slot: ~200 runs of the real CLI
    good = f.make_leaf(["victim.example.com"])
    manifest = tmp_path / "case.yaml"
    codes: dict[int, int] = {}
    for path in files:
        for slot in SLOTS:
            manifest.write_text(yaml.safe_dump_all(neighbours() + victim(slot, path.read_bytes(), good)))
            out = io.StringIO()
            code = main(["check", "--dry-run", "-f", str(manifest), "-o", "json", "--log-level", "error"], stdout=out)
            json.loads(out.getvalue())  # raises on anything but one JSON document
            codes[code] = codes.get(code, 0) + 1
    assert set(codes) <= {0, 1, 2}, codes
    assert sum(codes.values()) == len(files) * len(SLOTS) >= 200


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.floats(min_value=0, max_value=1), as_json=st.booleans())
def test_truncated_manifest_text_is_a_finding(cut: float, as_json: bool) -> None:
    """A file cut anywhere (a partial download, a full disk) loads what is whole."""
    import yaml

    objects = [*neighbours(), f.secret("victim-tls", leaf=f.make_leaf(["victim.example.com"]))]
    text = (
        json.dumps({"kind": "List", "apiVersion": "v1", "items": objects}) if as_json else yaml.safe_dump_all(objects)
    )
    loaded = LoadResult()
    parse_text(text[: int(len(text) * cut)], "cut.yaml", loaded)
    inventory, findings = build_inventory(loaded.objects, default_namespace="default")
    result = run_check(inventory, CONFIG, NOW, findings)
    json.dumps(to_document(result))
