"""The configuration file, its validation messages and ROTATOR_* overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from rotator.config.load import ConfigError, env_overrides, load_config
from rotator.config.schema import ACMEIssuerConfig, CAIssuerConfig

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "rotator.yaml"


def cfg_file(tmp_path: Path, text: str | bytes, name: str = "rotator.yaml") -> str:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return str(p)


def config_error(path: str | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={} if environ is None else environ)
    return str(info.value)


# --- files -----------------------------------------------------------------------------


def test_example_config_loads() -> None:
    cfg = load_config(str(EXAMPLE), environ={})
    assert cfg.cluster_name == "demo"
    assert cfg.renewal.renew_before == "33%"
    rb = cfg.renew_before()
    assert rb is not None and rb.fraction == pytest.approx(0.33)
    assert cfg.renewal.client_ca_warning == "30d"
    assert isinstance(cfg.issuers["internal-ca"], CAIssuerConfig)
    assert cfg.issuers["internal-ca"].secret == "istio-system/internal-ca"
    assert isinstance(cfg.issuers["letsencrypt"], ACMEIssuerConfig)
    assert [r.issuer for r in cfg.rules] == ["internal-ca", "letsencrypt"]
    assert cfg.rules[0].matches("istio-system", "mtls-payments", ())
    assert not cfg.rules[0].matches("default", "mtls-payments", ())
    assert cfg.rules[1].matches("any", "any", ("app.example.com", "example.com"))
    assert not cfg.rules[1].matches("any", "any", ("app.example.com", "app.example.org"))
    assert cfg.discovery.default_namespace == "default"
    assert cfg.logging.level == "info"


def test_no_file_and_empty_file_give_defaults(tmp_path: Path) -> None:
    for path in (None, cfg_file(tmp_path, ""), cfg_file(tmp_path, "# nothing but a comment\n", "c.yaml")):
        cfg = load_config(path, environ={})
        assert cfg.cluster_name == "default"
        assert cfg.renew_before() is None
        assert cfg.rules == []
        assert cfg.renewal.client_ca_warning == "30d"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = cfg_file(tmp_path, "clusterName: prod\n")
    msg = config_error(path)
    assert path in msg
    assert "clusterName: unknown key" in msg


def test_unknown_nested_key(tmp_path: Path) -> None:
    msg = config_error(cfg_file(tmp_path, "renewal:\n  renew_befor: 720h\n"))
    assert "renewal.renew_befor: unknown key" in msg


def test_unknown_key_in_a_rule_uses_list_index_notation(tmp_path: Path) -> None:
    text = "issuers: {ca: {type: ca, secret: a/b}}\nrules:\n  - issuer: ca\n  - issuer: ca\n    namespace: [x]\n"
    msg = config_error(cfg_file(tmp_path, text))
    assert "rules[1].namespace: unknown key" in msg


def test_unknown_key_in_an_issuer_names_the_path_the_user_wrote(tmp_path: Path) -> None:
    """Pydantic puts the union tag ("ca") into the location; the message must not."""
    msg = config_error(cfg_file(tmp_path, "issuers:\n  internal:\n    type: ca\n    validty: 24h\n"))
    assert "issuers.internal.validty: unknown key" in msg
    assert "internal.ca." not in msg


def test_every_error_is_listed(tmp_path: Path) -> None:
    msg = config_error(cfg_file(tmp_path, "bogus: 1\nrenewal: {renew_before: abc, extra: 2}\n"))
    assert "bogus: unknown key" in msg
    assert "renewal.extra: unknown key" in msg
    assert "renewal.renew_before: invalid duration 'abc'" in msg


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: not-a-list\n", "rules: Input should be a valid list"),
        ("rules: {issuer: x}\n", "rules: Input should be a valid list"),
        ("renewal:\n  renew_before: abc\n", "renewal.renew_before: invalid duration 'abc'"),
        ("renewal:\n  renew_before: 150%\n", "renewal.renew_before: invalid percentage '150%'"),
        ("renewal:\n  renew_before: 0%\n", "renewal.renew_before: invalid percentage"),
        ("renewal:\n  renew_before: 0h\n", "renewal.renew_before: invalid duration '0h': must be positive"),
        ("renewal:\n  renew_before: 720\n", "renewal.renew_before: Input should be a valid string"),
        ("renewal:\n  client_ca_warning: soon\n", "renewal.client_ca_warning: invalid duration 'soon'"),
        ("renewal: 30d\n", "renewal: Input should be a valid dictionary"),
        ("cluster_name: [a]\n", "cluster_name: Input should be a valid string"),
        ("logging: {level: loud}\n", "logging.level: Input should be"),
        ("logging: {format: xml}\n", "logging.format: Input should be"),
        ("discovery: {scope_gateway_to_namespace: maybe}\n", "discovery.scope_gateway_to_namespace"),
        ("issuers: {x: {type: vault}}\n", "issuers.x: Input tag 'vault'"),
        ("issuers: {x: {type: ca, validity: forever}}\n", "issuers.x.validity: invalid duration 'forever'"),
        ("issuers: {x: {type: acme}}\n", "issuers.x.directory: Field required"),
        (
            "issuers: {x: {type: ca, secret: ns/ca}}\nrules: [{issuer: x, renew_before: 101%}]\n",
            "rules[0].renew_before",
        ),
        ("issuers: {x: {type: ca, secret: ns/ca}}\nrules: [{issuer: x}, {issuer: x, hosts: a}]\n", "rules[1].hosts"),
        ("issuers: {x: {type: ca, secret: ns/ca}}\nrules: [{namespaces: [a]}]\n", "rules[0].issuer: Field required"),
    ],
)
def test_wrong_types_name_the_field(tmp_path: Path, text: str, expected: str) -> None:
    msg = config_error(cfg_file(tmp_path, text))
    assert expected in msg
    assert "invalid configuration" in msg


def test_rule_naming_an_undefined_issuer(tmp_path: Path) -> None:
    text = "issuers: {internal: {type: ca, secret: ns/ca}}\nrules:\n  - issuer: internal\n  - issuer: letsencrypt\n"
    msg = config_error(cfg_file(tmp_path, text))
    assert "rules[1].issuer" in msg
    assert "'letsencrypt'" in msg
    assert "internal" in msg  # lists the issuers that do exist
    msg0 = config_error(cfg_file(tmp_path, "rules: [{issuer: nope}]\n", "other.yaml"))
    assert "rules[0].issuer" in msg0
    assert "none defined" in msg0


@pytest.mark.parametrize(("text", "what"), [("- a\n- b\n", "list"), ("just a string\n", "str"), ("42\n", "int")])
def test_non_mapping_file(tmp_path: Path, text: str, what: str) -> None:
    path = cfg_file(tmp_path, text)
    msg = config_error(path)
    assert path in msg
    assert "must be a mapping" in msg
    assert what in msg


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "absent.yaml")
    msg = config_error(path)
    assert path in msg
    assert "cannot read" in msg


def test_directory_instead_of_file(tmp_path: Path) -> None:
    msg = config_error(str(tmp_path))
    assert str(tmp_path) in msg
    assert "cannot read" in msg


def test_undecodable_file(tmp_path: Path) -> None:
    path = cfg_file(tmp_path, b"cluster_name: \xff\xfe\n")
    msg = config_error(path)
    assert path in msg
    assert "cannot read" in msg
    assert "UTF-8" in msg


@pytest.mark.parametrize("text", ["renewal: [unclosed\n", "a: b: c\n", "key: 'open\n", "\tcluster_name: x\n"])
def test_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = cfg_file(tmp_path, text)
    msg = config_error(path)
    assert path in msg
    assert "invalid YAML" in msg


# --- environment overrides -------------------------------------------------------------


def test_env_sets_a_top_level_field() -> None:
    assert load_config(None, environ={"ROTATOR_CLUSTER_NAME": "prod"}).cluster_name == "prod"


def test_env_sets_a_nested_field() -> None:
    cfg = load_config(None, environ={"ROTATOR_RENEWAL__RENEW_BEFORE": "720h"})
    assert cfg.renewal.renew_before == "720h"
    rb = cfg.renew_before()
    assert rb is not None and rb.duration == timedelta(hours=720)


def test_env_wins_over_the_file_and_keeps_its_siblings(tmp_path: Path) -> None:
    path = cfg_file(tmp_path, "cluster_name: file\nrenewal:\n  renew_before: 33%\n  client_ca_warning: 10d\n")
    cfg = load_config(path, environ={"ROTATOR_CLUSTER_NAME": "env", "ROTATOR_RENEWAL__RENEW_BEFORE": "720h"})
    assert cfg.cluster_name == "env"
    assert cfg.renewal.renew_before == "720h"
    assert cfg.renewal.client_ca_warning == "10d"


def test_env_overrides_the_example_config() -> None:
    cfg = load_config(str(EXAMPLE), environ={"ROTATOR_LOGGING__LEVEL": "debug"})
    assert cfg.logging.level == "debug"
    assert cfg.cluster_name == "demo"


def test_bad_env_override_is_reported(tmp_path: Path) -> None:
    path = cfg_file(tmp_path, "renewal:\n  renew_before: 33%\n")
    msg = config_error(path, {"ROTATOR_RENEWAL__RENEW_BEFORE": "150%"})
    assert "ROTATOR_* environment" in msg
    assert path in msg
    assert "renewal.renew_before: invalid percentage '150%'" in msg


def test_unknown_env_key_is_reported() -> None:
    msg = config_error(None, {"ROTATOR_RENEWAL__RENEW_BEFOR": "720h"})
    assert "renewal.renew_befor: unknown key" in msg


def test_reserved_and_unrelated_variables_are_ignored() -> None:
    environ = {"ROTATOR_CONFIG": "/does/not/exist.yaml", "ROTATOR_E2E": "1", "HOME": "/root", "ROTATORX": "1"}
    assert env_overrides(environ) == {}
    assert load_config(None, environ=environ).cluster_name == "default"


def test_env_values_are_yaml_for_bools_and_collections() -> None:
    environ = {
        "ROTATOR_DISCOVERY__SCOPE_GATEWAY_TO_NAMESPACE": "true",
        "ROTATOR_ISSUERS": "{internal: {type: ca, secret: istio-system/ca}}",
        "ROTATOR_RULES": "[{issuer: internal, namespaces: [prod-*]}]",
    }
    cfg = load_config(None, environ=environ)
    assert cfg.discovery.scope_gateway_to_namespace is True
    assert cfg.rules[0].issuer == "internal"
    assert cfg.rules[0].namespaces == ["prod-*"]


@pytest.mark.parametrize("value", ["01", "2024", "1.10", "2024-01-01", "1e3"])
def test_env_string_fields_take_number_like_values_verbatim(value: str) -> None:
    assert load_config(None, environ={"ROTATOR_CLUSTER_NAME": value}).cluster_name == value


def test_env_overrides_tree() -> None:
    environ = {
        "ROTATOR_CLUSTER_NAME": "prod",
        "ROTATOR_RENEWAL__RENEW_BEFORE": "720h",
        "ROTATOR_RENEWAL__CLIENT_CA_WARNING": "10d",
        "ROTATOR_DISCOVERY__SCOPE_GATEWAY_TO_NAMESPACE": "false",
        "ROTATOR___": "ignored: no path",
    }
    assert env_overrides(environ) == {
        "cluster_name": "prod",
        "renewal": {"renew_before": "720h", "client_ca_warning": "10d"},
        "discovery": {"scope_gateway_to_namespace": False},
    }


def test_process_environment_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROTATOR_CLUSTER_NAME", "from-process-env")
    assert load_config(None).cluster_name == "from-process-env"


def test_kubernetes_service_variables_are_not_config() -> None:
    """A Service named rotator injects ROTATOR_SERVICE_HOST, ROTATOR_PORT, ...: never fatal."""
    env = {
        "ROTATOR_SERVICE_HOST": "10.0.0.1",
        "ROTATOR_SERVICE_PORT": "9090",
        "ROTATOR_PORT": "tcp://10.0.0.1:9090",
        "ROTATOR_PORT_9090_TCP_ADDR": "10.0.0.1",
        "ROTATOR_E2E_INGRESS": "127.0.0.1:8443",
    }
    cfg = load_config(None, environ=env)
    assert cfg.cluster_name == "default"


def test_empty_override_means_unset(tmp_path: Path) -> None:
    path = cfg_file(tmp_path, "renewal:\n  renew_before: 30d\n")
    cfg = load_config(path, environ={"ROTATOR_RENEWAL__RENEW_BEFORE": ""})
    assert cfg.renewal.renew_before == "30d"


def test_bad_override_names_the_variable() -> None:
    message = config_error(None, {"ROTATOR_RENEWAL__RENEW_BEFORE": "soon"})
    assert "renewal.renew_before" in message and "ROTATOR_RENEWAL__RENEW_BEFORE" in message
    message = config_error(None, {"ROTATOR_RENEWAL__RENEW_BEFOR": "30d"})
    assert "unknown key" in message and "ROTATOR_RENEWAL__RENEW_BEFOR" in message


def test_state_namespace_moves_all_of_rotators_own_objects() -> None:
    """Installed in another namespace (the Helm chart sets state_namespace to the release's),
    the Lease, ACME account keys and HTTP-01 routes follow; explicit settings still win."""
    from rotator.config.schema import Config

    acme = {"type": "acme", "directory": "https://acme.test/dir", "terms_agreed": True}
    cfg = Config.model_validate(
        {
            "renewal": {"state_namespace": "platform-certs"},
            "issuers": {
                "le": {**acme, "solver": "http01", "http01": {"service_host": "rotator.platform-certs.svc"}},
                "pinned": {
                    **acme,
                    "account_secret": "elsewhere/key",
                    "solver": "http01",
                    "http01": {"virtual_service_namespace": "x"},
                },
                "ca": {"type": "ca", "secret": "istio-system/ca"},
            },
            "daemon": {"lease": {"name": "l"}},
        }
    )
    le, pinned = cfg.issuers["le"], cfg.issuers["pinned"]
    assert isinstance(le, ACMEIssuerConfig) and isinstance(pinned, ACMEIssuerConfig)
    assert le.account_secret == "platform-certs/rotator-acme-le"
    assert le.http01 is not None and le.http01.virtual_service_namespace == "platform-certs"
    assert pinned.account_secret == "elsewhere/key"
    assert pinned.http01 is not None and pinned.http01.virtual_service_namespace == "x"
    assert cfg.daemon.lease.namespace == "platform-certs" and cfg.daemon.lease.name == "l"
    default = Config.model_validate({})
    assert default.daemon.lease.namespace == "rotator"


def test_a_malformed_issuers_section_is_a_config_error_with_state_namespace_set(tmp_path: Path) -> None:
    """The home-namespace defaults run before validation; they must leave bad input to it."""
    for issuers in ("[a, b]", "oops"):
        path = tmp_path / "rotator.yaml"
        path.write_text(f"renewal: {{state_namespace: certs}}\nissuers: {issuers}\n")
        with pytest.raises(ConfigError, match="issuers"):
            load_config(str(path), environ={})


def test_an_unknown_key_gets_a_did_you_mean() -> None:
    from rotator.config.load import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"renewal": {"concurency": 4}, "rules": [{"issuer": "x", "hots": ["a"]}], "zzz": 1})
    text = str(err.value)
    assert "renewal.concurency: unknown key (did you mean 'concurrency'?)" in text
    assert "rules[0].hots: unknown key (did you mean 'hosts'?)" in text
    assert "zzz: unknown key\n" in text + "\n"  # nothing close: no guess
