"""Check results that page (or not) and a valid routing key, for the alerting tests."""

from __future__ import annotations

from typing import Any

from rotator.model import CheckResult
from tests.support import factory as f

KEY = "R0tatorTestKey0123456789abcdefAB"[1:] + "X"  # 32 alphanumerics, not an R… ruleset key


def expired_result(n: int = 1) -> CheckResult:
    objs: list[Any] = [f.ingress()]
    for i in range(n):
        objs.append(f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]))
        objs.append(f.secret(f"tls-{i}", leaf=f.make_leaf([f"h{i}.example.com"], nb=-90, na=-1)))
    result: CheckResult = f.run(*objs)
    return result


def healthy_result(n: int = 1) -> CheckResult:
    objs: list[Any] = [f.ingress()]
    for i in range(n):
        objs.append(f.gateway(f"gw{i}", [f.server([f"h{i}.example.com"], f"tls-{i}")]))
        objs.append(f.secret(f"tls-{i}", leaf=f.make_leaf([f"h{i}.example.com"])))
    result: CheckResult = f.run(*objs)
    return result
