"""deploy/helm/rotator: renders with the Helm v4 engine, validates strictly, and means
the same as the kustomize manifests where they overlap.

The renderer is helm-python-sdk (Helm's own Go packages as a shared library; no helm
binary is installable here). Output is validated with kubernetes-validate; the
Prometheus Operator kinds have no bundled schema and are checked field by field.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from rotator.cli import build_parser
from rotator.config.load import load_config
from rotator.config.schema import ACMEIssuerConfig
from tests.support import kube

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy/helm/rotator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def render(
    values: dict[str, Any] | None = None, namespace: str = "rotator", name: str = "rotator"
) -> list[dict[str, Any]]:
    chart = helm_python.Chart.load(CHART)
    out = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(out.items()):
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


def values_file(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    for d in docs:
        if d["kind"] == "CronJob":
            return dict(d["spec"]["jobTemplate"]["spec"]["template"]["spec"])
        if d["kind"] == "Deployment":
            return dict(d["spec"]["template"]["spec"])
    raise AssertionError("no workload rendered")


def pod_labels(docs: list[dict[str, Any]]) -> dict[str, str]:
    for d in docs:
        if d["kind"] == "CronJob":
            return dict(d["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"])
        if d["kind"] == "Deployment":
            return dict(d["spec"]["template"]["metadata"]["labels"])
    raise AssertionError("no workload rendered")


def shipped_config(docs: list[dict[str, Any]], tmp_path: Path) -> Any:
    """The ConfigMap's rotator.yaml, loaded by rotator itself: what the pod will run with."""
    path = tmp_path / "rotator.yaml"
    path.write_text(one(docs, "ConfigMap")["data"]["rotator.yaml"])
    return load_config(str(path), environ={})


def validate(docs: list[dict[str, Any]], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in OPERATOR_KINDS]))
    exe = Path(sys.executable).parent / "kubernetes-validate"
    return subprocess.run([str(exe), "--strict", "-k", "1.32.0", "--quiet", str(path)], capture_output=True, text=True)


CASES = [pytest.param({}, id="defaults"), pytest.param({"mode": "daemon"}, id="daemon-defaults")] + [
    pytest.param(values_file(p), id=p.stem) for p in CI_VALUES
]


def test_helm_lint_finds_no_errors() -> None:
    for values in [{}] + [values_file(p) for p in CI_VALUES]:
        result = helm_python.lint(CHART, values, strict=True)
        errors = [m for m in result["messages"] if m["severity"] > 1]  # 1 = info (e.g. "icon is recommended")
        assert not result["errors"] and not errors, result


@pytest.mark.parametrize("values", CASES)
def test_renders_and_validates_strictly(values: dict[str, Any], tmp_path: Path) -> None:
    docs = render(values)
    workload = "Deployment" if values.get("mode") == "daemon" else "CronJob"
    assert {"ServiceAccount", "ConfigMap", "ClusterRole", "Role", "RoleBinding", workload} <= {d["kind"] for d in docs}
    p = validate(docs, tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr


def test_strict_validation_catches_a_bad_field(tmp_path: Path) -> None:
    """The gate above can fail: a misspelt field in a rendered object is rejected."""
    docs = render()
    pod_spec_ = docs[[d["kind"] for d in docs].index("CronJob")]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pod_spec_["serviceAcountName"] = "x"
    assert validate(docs, tmp_path).returncode != 0


@pytest.mark.parametrize("values", CASES)
def test_the_shipped_config_loads_and_mounted_files_exist_where_it_says(values: dict[str, Any], tmp_path: Path) -> None:
    docs = render(values)
    cfg = shipped_config(docs, tmp_path)
    spec = pod_spec(docs)
    (container,) = spec["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    files: set[str] = set()
    for vol in spec["volumes"]:
        for source in vol.get("projected", {}).get("sources", []):
            files |= {f"{mounts[vol['name']]}/{item['path']}" for item in source["secret"]["items"]}
    refs = []
    if cfg.pagerduty:
        refs.append(cfg.pagerduty.routing_key)
    for issuer in cfg.issuers.values():
        if isinstance(issuer, ACMEIssuerConfig):
            refs += [r for r in (issuer.eab_hmac, issuer.dns01 and issuer.dns01.tsig_secret) if r]
    for ref in refs:
        assert ref.file in files, f"config reads {ref.file}, the pod mounts {sorted(files)}"
    assert len(refs) == len(files), "every mounted secret is used by the config"
    assert mounts["config"] == "/etc/rotator"
    assert {"name": "ROTATOR_CONFIG", "value": "/etc/rotator/rotator.yaml"} in container["env"]


@pytest.mark.parametrize("values", CASES)
def test_pods_meet_the_restricted_pod_security_profile(values: dict[str, Any]) -> None:
    spec = pod_spec(render(values))
    psc = spec["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 10001
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not spec.get("hostNetwork") and not spec.get("hostPID")
    for c in spec["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]
        assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"])
    for vol in spec["volumes"]:
        assert "hostPath" not in vol


@pytest.mark.parametrize("values", CASES)
def test_the_container_runs_a_command_rotator_has(values: dict[str, Any]) -> None:
    (container,) = pod_spec(render(values))["containers"]
    args = build_parser().parse_args(container["args"])
    if values.get("mode") == "daemon":
        assert args.command == "daemon"
    else:
        assert args.command == "check" and args.exit_codes == "job" and not args.dry_run
        assert args.pushgateway == (values.get("cronjob") or {}).get("pushgatewayUrl")


def _rbac(docs: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    out = []
    for d in docs:
        if d["kind"] in kube.RBAC_KINDS:
            body = {k: d[k] for k in ("rules", "roleRef", "subjects") if k in d}
            out.append((d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", ""), json.dumps(body)))
    return sorted(out)


@pytest.mark.parametrize("mode", ["cronjob", "daemon"])
def test_rbac_is_the_kustomize_rbac(mode: str) -> None:
    """One set of rules: the chart's RBAC (release rotator in namespace rotator) equals the
    rendered kustomize overlay's, object for object, rule for rule."""
    assert _rbac(render({"mode": mode})) == _rbac(kube.render(mode))


def test_rbac_follows_the_release_namespace_and_gateway_namespaces(tmp_path: Path) -> None:
    values = {"rbac": {"gatewayNamespaces": ["istio-system", "istio-ingress"]}, "mode": "daemon"}
    docs = render(values, namespace="platform-certs", name="certs")
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]) for d in docs if d["kind"] == "Role"}
    assert roles == {
        ("istio-system", "certs-rotator-secrets"),
        ("istio-ingress", "certs-rotator-secrets"),
        ("platform-certs", "certs-rotator-self"),
        ("platform-certs", "certs-rotator-leader"),
    }
    for d in docs:
        for subject in d.get("subjects", []):
            assert subject == {"kind": "ServiceAccount", "name": "certs-rotator", "namespace": "platform-certs"}
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
            assert d["metadata"]["namespace"] == "platform-certs", d["kind"]
    cfg = shipped_config(docs, tmp_path)
    # rotator's own objects go where its Role grants them.
    assert cfg.renewal.state_namespace == "platform-certs" and cfg.daemon.lease.namespace == "platform-certs"


def test_rbac_create_false_renders_none_and_needs_a_service_account_name() -> None:
    docs = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "existing"}})
    assert not [d for d in docs if d["kind"] in kube.RBAC_KINDS or d["kind"] == "ServiceAccount"]
    assert pod_spec(docs)["serviceAccountName"] == "existing"
    with pytest.raises(helm_python.HelmError, match=r"serviceAccount\.name is required"):
        render({"serviceAccount": {"create": False}})


def test_daemon_mode_wires_schedule_leader_election_probes_and_metrics(tmp_path: Path) -> None:
    docs = render({"mode": "daemon", "schedule": "*/20 * * * *", "metrics": {"port": 9300}, "replicas": 3})
    cfg = shipped_config(docs, tmp_path)
    assert cfg.daemon.cron == "*/20 * * * *" and cfg.daemon.leader_election is True
    assert cfg.daemon.listen == "0.0.0.0:9300"
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    (container,) = pod_spec(docs)["containers"]
    assert {"name": "http", "containerPort": 9300} in container["ports"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "http", "port": 9300, "targetPort": "http"}]
    assert service["spec"]["selector"].items() <= pod_labels(docs).items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels(docs).items()
    no_schedule = shipped_config(render({"mode": "daemon", "schedule": ""}), tmp_path)
    assert no_schedule.daemon.cron is None and no_schedule.daemon.interval == "1h"


def test_a_config_change_rolls_the_daemon() -> None:
    def checksum(values: dict[str, Any]) -> str:
        return str(one(render(values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    base = {"mode": "daemon"}
    assert checksum(base) == checksum(base)
    assert checksum(base) != checksum({**base, "config": {"cluster_name": "other"}})


def test_servicemonitor_scrapes_the_service_that_fronts_the_pods() -> None:
    docs = render({"mode": "daemon", "serviceMonitor": {"enabled": True, "labels": {"release": "kps"}}})
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["rotator"]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]} and endpoint["path"] == "/metrics"


def test_prometheusrule_is_the_monitoring_asset_unchanged() -> None:
    """The chart emits the rules without templating: the alert annotations keep their
    Prometheus templates, and the rules equal deploy/monitoring (which promtool tests)."""
    rule = one(render({"mode": "daemon", "prometheusRule": {"enabled": True}}), "PrometheusRule")
    asset = yaml.safe_load((ROOT / "deploy/monitoring/prometheusrule.yaml").read_text())
    assert rule["spec"] == asset["spec"]
    assert "{{ $labels.namespace }}" in json.dumps(rule["spec"])


@dataclass(frozen=True)
class Peer:
    """One end of a connection: an address outside the cluster, or a pod in a namespace."""

    ip: str = "198.51.100.7"
    pod: dict[str, str] | None = None
    namespace: str = "rotator"


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    return selector is not None and dict(selector.get("matchLabels") or {}).items() <= labels.items()


def _peer_matches(rule_peer: dict[str, Any], peer: Peer) -> bool:
    if "ipBlock" in rule_peer:
        block = rule_peer["ipBlock"]
        ip = ipaddress.ip_address(peer.ip)
        return ip in ipaddress.ip_network(block["cidr"]) and not any(
            ip in ipaddress.ip_network(c) for c in block.get("except", [])
        )
    if peer.pod is None:
        return False
    ns_labels = {"kubernetes.io/metadata.name": peer.namespace}
    ns_ok = (
        _selects(rule_peer["namespaceSelector"], ns_labels)
        if "namespaceSelector" in rule_peer
        else (peer.namespace == "rotator")
    )
    pod_ok = _selects(rule_peer["podSelector"], peer.pod) if "podSelector" in rule_peer else True
    return ns_ok and pod_ok


def allowed(policy: dict[str, Any], direction: str, peer: Peer, port: int, protocol: str = "TCP") -> bool:
    """NetworkPolicy semantics (networking.k8s.io/v1): a flow is allowed when one rule's
    ports (none: all) and peers (none: all) both match."""
    for rule in policy.get(direction) or []:
        ports = rule.get("ports")
        peers = rule.get("to" if direction == "egress" else "from")
        port_ok = not ports or any(p["port"] == port and p.get("protocol", "TCP") == protocol for p in ports)
        if port_ok and (not peers or any(_peer_matches(x, peer) for x in peers)):
            return True
    return False


KUBE_DNS = Peer(ip="10.96.0.10", pod={"k8s-app": "kube-dns"}, namespace="kube-system")
GATEWAY = Peer(ip="10.244.1.5", pod={"istio": "ingressgateway"}, namespace="istio-system")
PROMETHEUS = Peer(ip="10.244.2.9", pod={"app": "prometheus"}, namespace="monitoring")
OTHER_POD = Peer(ip="10.244.3.3", pod={"app": "web"}, namespace="default")
ACME = Peer(ip="172.65.32.248")


def test_networkpolicy_admits_what_rotator_uses_and_nothing_else() -> None:
    values = values_file(CHART / "ci/daemon-full-values.yaml")
    docs = render(values)
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels(docs).items()
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    must = [
        ("egress", KUBE_DNS, 53, "UDP"),
        ("egress", KUBE_DNS, 53, "TCP"),
        ("egress", Peer(ip="10.0.0.1"), 6443, "TCP"),  # the API server (apiServer.cidrs)
        ("egress", Peer(ip="10.0.0.1"), 443, "TCP"),
        ("egress", GATEWAY, 8443, "TCP"),  # post-renewal verification
        ("egress", ACME, 443, "TCP"),  # ACME directory, PagerDuty
        ("egress", Peer(ip="192.0.2.53"), 53, "UDP"),  # the RFC 2136 nameserver (egress.extra)
        ("ingress", PROMETHEUS, 9090, "TCP"),
    ]
    must_not = [
        ("egress", ACME, 80, "TCP"),
        ("egress", ACME, 22, "TCP"),
        ("egress", Peer(ip="10.0.0.2"), 6443, "TCP"),  # not the API server
        ("egress", OTHER_POD, 5432, "TCP"),
        ("egress", Peer(ip="203.0.113.1"), 53, "UDP"),  # DNS only to kube-dns and the nameserver
        ("ingress", OTHER_POD, 9090, "TCP"),  # metrics only from the monitoring namespace
        ("ingress", PROMETHEUS, 8089, "TCP"),  # no HTTP-01 here
    ]
    for direction, peer, port, proto in must:
        assert allowed(policy, direction, peer, port, proto), (direction, peer, port, proto)
    for direction, peer, port, proto in must_not:
        assert not allowed(policy, direction, peer, port, proto), (direction, peer, port, proto)

    cron = render(values_file(CHART / "ci/cronjob-http01-values.yaml"))
    http01 = one(cron, "NetworkPolicy")["spec"]
    pushgateway = Peer(ip="10.244.2.20", pod={"app": "pushgateway"}, namespace="monitoring")
    assert allowed(http01, "egress", pushgateway, 9091)  # cronjob.pushgatewayUrl's port
    assert allowed(http01, "ingress", GATEWAY, 8089)  # the CA's request, through the gateway
    assert not allowed(http01, "ingress", OTHER_POD, 8089)
    assert not allowed(http01, "ingress", PROMETHEUS, 9090)  # a CronJob has no metrics port
    assert not allowed(http01, "egress", OTHER_POD, 9090)


def test_the_networkpolicy_model_can_refuse() -> None:
    """The evaluator above is not permissive by construction."""
    policy = {
        "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}], "ports": [{"port": 1}]}]
    }
    assert allowed(policy, "egress", Peer(ip="10.2.0.1"), 1)
    assert not allowed(policy, "egress", Peer(ip="10.1.0.1"), 1)
    assert not allowed(policy, "egress", Peer(ip="10.2.0.1"), 2)
    assert not allowed({"egress": []}, "egress", ACME, 443)


@pytest.mark.parametrize(
    "egress",
    [
        {"apiServer": {"cidrs": []}},
        {"apiServer": {"ports": []}},
        {"dns": {"to": []}},
        {"gateways": {"to": []}},
        {"https": {"ports": []}},
    ],
)
def test_an_empty_list_is_refused_where_it_would_open_the_policy(egress: dict[str, Any]) -> None:
    """In NetworkPolicy an empty `to` or `ports` means *all*: a list emptied to close
    something would open it instead."""
    with pytest.raises(helm_python.HelmValuesError):
        render({"networkPolicy": {"enabled": True, "egress": egress}})
    with pytest.raises(helm_python.HelmValuesError):
        render({"networkPolicy": {"enabled": True, "ingress": {"metricsFrom": []}}})


def test_no_https_cidrs_drops_the_https_rule_and_ipv6_cidrs_render(tmp_path: Path) -> None:
    values = {"networkPolicy": {"enabled": True, "egress": {"https": {"cidrs": []}, "apiServer": {"cidrs": ["::/0"]}}}}
    docs = render(values)
    policy = one(docs, "NetworkPolicy")["spec"]
    assert not allowed(policy, "egress", ACME, 443)
    assert allowed(policy, "egress", Peer(ip="2001:db8::1"), 6443)
    assert validate(docs, tmp_path).returncode == 0


def test_http01_exposes_the_responder_the_config_points_at(tmp_path: Path) -> None:
    docs = render(values_file(CHART / "ci/cronjob-http01-values.yaml"))
    service = one(docs, "Service")
    assert service["spec"]["ports"] == [{"name": "http01", "port": 8089, "targetPort": "http01"}]
    assert service["spec"]["selector"].items() <= pod_labels(docs).items()
    (container,) = pod_spec(docs)["containers"]
    assert {"name": "http01", "containerPort": 8089} in container["ports"]
    issuer = shipped_config(docs, tmp_path).issuers["letsencrypt"]
    assert isinstance(issuer, ACMEIssuerConfig) and issuer.http01 is not None
    assert issuer.http01.listen.endswith(":8089") and issuer.http01.service_port == 8089
    assert issuer.http01.virtual_service_namespace == "rotator"


def test_http01_on_another_port_and_release_points_the_issuer_at_the_charts_service(tmp_path: Path) -> None:
    """The responder, the Service and the temporary VirtualService must agree on one port
    and one host, whatever the values say."""
    values = values_file(CHART / "ci/cronjob-http01-values.yaml")
    values["http01"] = {"enabled": True, "port": 8090}
    del values["config"]["issuers"]["letsencrypt"]["http01"]["service_host"]
    docs = render(values, namespace="edge", name="certs")
    service = one(docs, "Service")
    issuer = shipped_config(docs, tmp_path).issuers["letsencrypt"]
    assert isinstance(issuer, ACMEIssuerConfig) and issuer.http01 is not None
    (port,) = service["spec"]["ports"]
    assert issuer.http01.listen == f"0.0.0.0:{port['port']}" == "0.0.0.0:8090"
    assert issuer.http01.service_port == port["port"]
    name, namespace = service["metadata"]["name"], service["metadata"]["namespace"]
    assert (
        issuer.http01.service_host == f"{name}.{namespace}.svc.cluster.local" == "certs-rotator.edge.svc.cluster.local"
    )
    assert issuer.http01.virtual_service_namespace == "edge"
    (container,) = pod_spec(docs)["containers"]
    assert {"name": "http01", "containerPort": 8090} in container["ports"]


def test_long_release_names_fit_the_api_servers_limits() -> None:
    """kubernetes-validate does not check name lengths; the API server does (a CronJob's
    name leaves 11 characters for the Job suffix)."""
    docs = render({}, name="platform-certificates-istio-gateways-prod-eu1")
    cron = one(docs, "CronJob")
    assert len(cron["metadata"]["name"]) <= 52
    for d in docs:
        assert len(d["metadata"]["name"]) <= 253, d["kind"]
    docs = render({"mode": "daemon"}, name="x" * 70)
    assert len(one(docs, "Service")["metadata"]["name"]) <= 63
    assert len(one(docs, "Deployment")["metadata"]["name"]) <= 63


def test_own_objects_are_named_after_the_release(tmp_path: Path) -> None:
    """Two releases in one namespace must not share a Lease or a state ConfigMap."""
    a = shipped_config(render({"mode": "daemon"}, name="a"), tmp_path)
    b = shipped_config(render({"mode": "daemon"}, name="b"), tmp_path)
    assert (a.daemon.lease.name, a.renewal.state_configmap) == ("a-rotator-leader", "a-rotator-state")
    assert (b.daemon.lease.name, b.renewal.state_configmap) == ("b-rotator-leader", "b-rotator-state")
    same = shipped_config(render({"mode": "daemon"}), tmp_path)  # release "rotator": the kustomize names
    assert (same.daemon.lease.name, same.renewal.state_configmap) == ("rotator-leader", "rotator-state")


def test_one_pod_at_a_time_when_nothing_else_keeps_writers_single() -> None:
    def strategy(values: dict[str, Any]) -> Any:
        return one(render({"mode": "daemon", **values}), "Deployment")["spec"].get("strategy")

    assert strategy({}) is None  # rolling: the Lease keeps one writer
    assert strategy({"replicas": 1, "leaderElection": {"enabled": False}}) == {"type": "Recreate"}
    http01 = values_file(CHART / "ci/cronjob-http01-values.yaml")
    assert strategy({"replicas": 1, "http01": http01["http01"], "config": http01["config"]}) == {"type": "Recreate"}


def test_mounted_secrets_are_readable_without_fsgroup() -> None:
    """uid 10001 reads the files even where the platform drops fsGroup."""
    docs = render(values_file(CHART / "ci/daemon-full-values.yaml"))
    spec = pod_spec(docs)
    (secrets,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    assert secrets["projected"]["defaultMode"] == 0o444
    assert "fsGroup" not in spec["securityContext"]


def test_schedule_shorthands_and_the_daemon_interval(tmp_path: Path) -> None:
    assert one(render({"schedule": "@daily"}), "CronJob")["spec"]["schedule"] == "@daily"
    cfg = shipped_config(
        render({"mode": "daemon", "schedule": "", "config": {"daemon": {"interval": "15m"}}}), tmp_path
    )
    assert cfg.daemon.interval == "15m" and cfg.daemon.cron is None


def test_image_reference() -> None:
    def image(values: dict[str, Any]) -> str:
        return str(pod_spec(render(values))["containers"][0]["image"])

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert image({}) == f"ghcr.io/rotator-dev/rotator:{chart['appVersion']}"
    assert image({"image": {"tag": "0.2.0"}}) == "ghcr.io/rotator-dev/rotator:0.2.0"
    digest = "sha256:" + "ab" * 32
    assert image({"image": {"tag": "0.2.0", "digest": digest}}) == f"ghcr.io/rotator-dev/rotator@{digest}"


def test_chart_and_package_versions_agree() -> None:
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"mode": "sidecar"}, "/mode"),
        ({"replica": 2}, "'replica' not allowed"),
        ({"config": {"renewal": {"renew_befor": "30d"}}}, "'renew_befor' not allowed"),
        ({"config": {"renewal": {"backoff_max": "1 day"}}}, "/config/renewal/backoff_max"),
        ({"config": {"renewal": {"renew_before": "150"}}}, "/config/renewal/renew_before"),
        ({"config": {"renewal": {"state_namespace": "x"}}}, "'state_namespace' not allowed"),
        ({"config": {"issuers": {"le": {"type": "acme", "directory": "d", "solvr": "dns01"}}}}, "'solvr' not allowed"),
        ({"config": {"issuers": {"le": {"type": "acm", "directory": "d"}}}}, "/config/issuers/le/type"),
        ({"config": {"pagerduty": {"region": "eu"}}}, "'pagerduty' not allowed"),
        ({"pagerduty": {"enabled": True}}, "/pagerduty/routingKeySecret/name"),
        ({"pagerduty": {"enabled": True, "routingKeySecret": {"name": "pd"}, "settings": {"regoin": "eu"}}}, "regoin"),
        ({"image": {"digest": "latest"}}, "/image/digest"),
        ({"replicas": 0}, "/replicas"),
        ({"schedule": "every hour"}, "/schedule"),
        ({"issuerSecrets": {"le": {"tsig": {"name": "t"}}}}, "/issuerSecrets/le/tsig"),
        ({"issuerSecrets": {"le": {"tsig": {"name": "t", "key": "a b"}}}}, "/issuerSecrets/le/tsig/key"),
        ({"fullnameOverride": "x" * 53}, "/fullnameOverride"),
        ({"config": {"daemon": {"jitter": "1 minute"}}}, "/config/daemon/jitter"),
        ({"config": {"daemon": {"cron": "* * * * *"}}}, "'cron' not allowed"),
        ({"config": {"daemon": {"lease": {"name": "x"}}}}, "'name' not allowed"),
        ({"cronjob": {"concurrencyPolicy": "Allow"}}, "'concurrencyPolicy' not allowed"),
        (
            {"networkPolicy": {"egress": {"apiServer": {"cidrs": ["10.0.0.1"]}}}},
            "/networkPolicy/egress/apiServer/cidrs/0",
        ),
    ],
)
def test_bad_values_fail_naming_the_value(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as err:
        render(values)
    assert where in str(err.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"issuerSecrets": {"nope": {"tsig": {"name": "t", "key": "k"}}}}, 'no issuer "nope" in config.issuers'),
        (
            {
                "config": {"issuers": {"ca": {"type": "ca", "secret": "istio-system/ca"}}},
                "issuerSecrets": {"ca": {"tsig": {"name": "t", "key": "k"}}},
            },
            "config.issuers.ca has no dns01 section",
        ),
        ({"mode": "daemon", "replicas": 2, "leaderElection": {"enabled": False}}, "needs leaderElection.enabled"),
        (
            {
                "mode": "daemon",
                "http01": {"enabled": True},
                "config": {
                    "issuers": {"le": {"type": "acme", "directory": "d", "solver": "http01", "http01": {}}},
                },
            },
            "set replicas: 1",
        ),
        (
            {"config": {"issuers": {"le": {"type": "acme", "directory": "d", "solver": "http01", "http01": {}}}}},
            "set http01.enabled: true",
        ),
        ({"serviceMonitor": {"enabled": True}}, "serviceMonitor.enabled needs mode: daemon"),
        ({"rbac": {"gatewayNamespaces": []}}, "rbac.gatewayNamespaces is empty"),
        ({"prometheusRule": {"enabled": True}}, "needs cronjob.pushgatewayUrl"),
        (
            {
                "config": {
                    "issuers": {
                        "le": {"type": "acme", "directory": "d", "dns01": {"nameserver": "ns", "tsig_key_name": "k"}}
                    }
                }
            },
            "config.issuers.le.dns01 has no TSIG key",
        ),
        (
            {
                "config": {
                    "issuers": {
                        "le": {
                            "type": "acme",
                            "directory": "d",
                            "dns01": {"nameserver": "ns", "tsig_key_name": "k", "tsig_secret": {"env": "T"}},
                        }
                    }
                },
                "issuerSecrets": {"le": {"tsig": {"name": "t", "key": "k"}}},
            },
            "both set: keep one",
        ),
        ({"mode": "daemon", "config": {"daemon": {"interval": "15m"}}}, "config.daemon.interval is ignored"),
        ({"mode": "daemon", "schedule": "@hourly"}, "not @-shorthands"),
        (
            {"mode": "daemon", "replicas": 1, "http01": {"enabled": True, "port": 9090}},
            "http01.port and metrics.port are both 9090",
        ),
        ({"mode": "daemon", "serviceMonitor": {"enabled": True}, "service": {"enabled": False}}, "needs service"),
    ],
)
def test_inconsistent_values_fail_the_render_with_the_reason(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError) as err:
        render(values)
    assert message in str(err.value)


def test_values_schema_is_generated_from_the_config_models() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "rotator.config.helm_schema", "--check"], capture_output=True, text=True, cwd=ROOT
    )
    assert p.returncode == 0, p.stderr


def test_every_documented_value_has_a_schema_and_a_default() -> None:
    """values.yaml is the chart's reference: each key it documents is in the schema."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(defaults) <= set(schema["properties"])
    assert set(schema["properties"]) - {"global"} <= set(defaults)


def test_a_release_in_another_namespace_renews_with_exactly_the_charts_rbac(tmp_path: Path) -> None:
    """The chart's objects working together: its RBAC (release `certs` in `platform-certs`)
    enforced by the fake API server, its ConfigMap as the config, its container args: a
    due certificate is renewed, nothing is refused, and rotator's own state lands in the
    release namespace."""
    import io

    from rotator.cli import main
    from tests.support import factory as f
    from tests.support.fakeapi import FakeCluster
    from tests.support.world import CA, secret_data

    values = {
        "config": {
            "issuers": {"internal": {"type": "ca", "secret": "platform-certs/internal-ca", "validity": "720h"}},
            "rules": [{"issuer": "internal", "hosts": ["*.example.com"]}],
        }
    }
    docs = render(values, namespace="platform-certs", name="certs")
    rbac = [d for d in docs if d["kind"] in kube.RBAC_KINDS]
    config = tmp_path / "rotator.yaml"
    config.write_text(one(docs, "ConfigMap")["data"]["rotator.yaml"])
    (container,) = pod_spec(docs)["containers"]
    ca = CA()
    with FakeCluster(rbac_manifests=rbac, service_account="system:serviceaccount:platform-certs:certs-rotator") as fake:
        kube.seed_object(fake, f.ingress())
        kube.seed_object(fake, f.gateway("gw", [f.server(["app.example.com"], "app-tls")]))
        crt, key, _ = ca.leaf(["app.example.com"], days_left=5)
        kube.seed_object(fake, f.secret("app-tls", data={"tls.crt": crt, "tls.key": key}))
        kube.seed_object(fake, ca.secret(namespace="platform-certs"))
        out = io.StringIO()
        args = [*container["args"], "-o", "json", "--kubeconfig", str(fake.kubeconfig(tmp_path / "kc"))]
        code = main([*args, "--config", str(config), "--log-level", "error"], stdout=out)
        doc = json.loads(out.getvalue())
        (cred,) = doc["credentials"]
        assert cred["renewal"]["status"] == "renewed", cred
        assert code == 0 and fake.denied() == [] and fake.errors == []
        assert secret_data(fake, "app-tls", "istio-system")["tls.crt"] != crt
        state = [r for r in fake.requests if r.resource == "configmaps"]
        assert state and {r.namespace for r in state} == {"platform-certs"}


@pytest.mark.parametrize("values", [{"mode": "daemon"}, {"mode": "daemon", "schedule": "30 4 * * 1-5"}])
def test_the_daemon_starts_from_the_charts_rendered_config(values: dict[str, Any], tmp_path: Path) -> None:
    """`helm install --set mode=daemon` copies `schedule` into daemon.cron: the daemon must
    start with it (it crash-looped on CronTrigger.from_crontab(jitter=...))."""
    from datetime import UTC, datetime

    from rotator.commands.daemon import Daemon
    from tests.support.fakeapi import FakeCluster

    cfg = shipped_config(render(values), tmp_path)
    assert cfg.daemon.cron  # the chart's default schedule, or the one given
    with FakeCluster(rbac_manifests=kube.deploy_rbac()) as fake:
        d = Daemon(kube.api(fake.kubeconfig(tmp_path / "kc")), cfg, lambda: datetime.now(UTC), identity="chart")
        d.start(first_run_in=3600)  # scheduled, not run: this test is about starting
        try:
            job = d.scheduler.get_job("pass")
            trigger = job.trigger
            fields = {f.name: str(f) for f in trigger.fields}
            minute, hour, _day, _month, weekday = cfg.daemon.cron.split()
            assert fields["minute"] == minute and fields["hour"] == hour
            if weekday == "1-5":  # crontab's Monday to Friday, not APScheduler's Tuesday to Saturday
                assert fields["day_of_week"] == "mon,tue,wed,thu,fri"
            assert trigger.jitter == 60
        finally:
            d.stop()


def test_bad_schedules_and_listen_addresses_fail_when_the_config_loads(tmp_path: Path) -> None:
    from rotator.config.load import ConfigError, parse_config

    for daemon, field in (
        ({"cron": "nonsense"}, "daemon.cron"),
        ({"cron": "61 * * * *"}, "daemon.cron"),
        ({"cron": "0 3 * * 9"}, "daemon.cron"),
        ({"listen": "nonsense"}, "daemon.listen"),
        ({"listen": "127.0.0.1:99999"}, "daemon.listen"),
    ):
        with pytest.raises(ConfigError) as err:
            parse_config({"daemon": daemon})
        assert field in str(err.value), err.value
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "rotator",
            "daemon",
            "--listen",
            "garbage",
            "--config",
            str(ROOT / "config/rotator.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert p.returncode == 3 and "--listen: listen address 'garbage'" in p.stderr and "Traceback" not in p.stderr
