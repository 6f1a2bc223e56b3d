"""Fills the Helm chart's values.schema.json with the configuration models' JSON Schema.

python -m rotator.config.helm_schema          # rewrite deploy/helm/rotator/values.schema.json
python -m rotator.config.helm_schema --check  # exit 1 when the file is stale (a test runs this)

A typo in ``config`` then fails ``helm install`` naming the key, instead of a CronJob
whose pods exit 3 hours later. The chart's own values are written by hand in the file;
only ``$defs`` is generated, so the two cannot drift.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from rotator.config import schema as cfgmod

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "deploy/helm/rotator/values.schema.json"

# Same grammar as timeutil.parse_duration / parse_renew_before (which lowercase and strip).
DURATION = r"^\s*([0-9]+(\.[0-9]+)?[wdhmsWDHMS])+\s*$"
RENEW_BEFORE = r"^\s*(([0-9]+(\.[0-9]+)?[wdhmsWDHMS])+|[0-9]+(\.[0-9]+)?\s*%)\s*$"

# Keys the chart sets itself (templates/_helpers.tpl): a value here would be silently
# replaced, so the schema refuses it and says where it comes from instead.
CHART_OWNED = {
    "RenewalConfig": ["state_namespace", "state_configmap"],
    "DaemonConfig": ["listen", "leader_election", "cron"],
    "LeaseConfig": ["name", "namespace"],
    "HTTP01Config": ["listen", "service_port"],
    "Config": ["pagerduty"],
}
# Filled by the chart (tsig_secret from issuerSecrets, which the render then requires),
# so not required in the values.
CHART_FILLED = {"DNS01Config": ["tsig_secret"]}


def _patterns(model: type[BaseModel]) -> dict[str, str]:
    """Duration fields are plain strings to pydantic; their validators say which they are."""
    out: dict[str, str] = {}
    for dec in model.__pydantic_decorators__.field_validators.values():
        name = getattr(dec.func, "__func__", dec.func).__name__
        pattern = {
            "_check_duration": DURATION,
            "_check_optional_duration": DURATION,
            "_check_renew_before": RENEW_BEFORE,
        }.get(name)
        for field in dec.info.fields if pattern else ():
            out[field] = pattern  # type: ignore[assignment]
    return out


def _add_pattern(prop: dict[str, Any], pattern: str) -> None:
    if prop.get("type") == "string":
        prop["pattern"] = pattern
    for alt in prop.get("anyOf", []):
        if alt.get("type") == "string":
            alt["pattern"] = pattern


def _issuer_union(prop: dict[str, Any]) -> dict[str, Any]:
    """oneOf + discriminator reports 'matches neither' for one typo; if/then on `type`
    reports the typo itself."""
    mapping = prop["additionalProperties"]["discriminator"]["mapping"]
    branches = [
        {"if": {"properties": {"type": {"const": kind}}}, "then": {"$ref": ref}}
        for kind, ref in sorted(mapping.items())
    ]
    issuer = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": sorted(mapping)}},
        "allOf": branches,
    }
    return {**{k: v for k, v in prop.items() if k != "additionalProperties"}, "additionalProperties": issuer}


def generate() -> dict[str, Any]:
    root = cfgmod.Config.model_json_schema()
    defs: dict[str, Any] = root.pop("$defs")
    defs["Config"] = root
    models = {
        name: obj
        for name, obj in vars(cfgmod).items()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and name in defs
    }
    for name, model in models.items():
        props = defs[name]["properties"]
        for field, pattern in _patterns(model).items():
            _add_pattern(props[field], pattern)
        for field in CHART_OWNED.get(name, []):
            del props[field]
        for field in CHART_FILLED.get(name, []):
            defs[name]["required"] = [r for r in defs[name].get("required", []) if r != field]
    defs["Config"]["properties"]["issuers"] = _issuer_union(defs["Config"]["properties"]["issuers"])
    settings = copy.deepcopy(defs["PagerDutyConfig"])
    del settings["properties"]["routing_key"]
    settings["required"] = []
    settings["title"] = "PagerDutySettings"
    settings["description"] = (
        "config.pagerduty without routing_key (the chart mounts it from pagerduty.routingKeySecret)."
    )
    defs["PagerDutySettings"] = settings
    return dict(sorted(defs.items()))


def render(current: dict[str, Any]) -> str:
    return json.dumps({**current, "$defs": generate()}, indent=2) + "\n"


def main(argv: list[str]) -> int:
    current = json.loads(SCHEMA_PATH.read_text())
    text = render(current)
    if "--check" in argv:
        if SCHEMA_PATH.read_text() != text:
            sys.stderr.write(f"{SCHEMA_PATH} is stale: run python -m rotator.config.helm_schema\n")
            return 1
        return 0
    SCHEMA_PATH.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
