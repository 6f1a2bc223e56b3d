"""RBAC evaluation over parsed manifests, following `k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac`.

Every rule is expanded into *atoms* (one verb × group × resource × resourceName) so the fake can
tell a test which permissions were exercised and which were never needed: least privilege is
then a test assertion (`cluster.unused_rules() == []`) instead of a review comment.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .selectors import labels_match, selector_from_label_selector


@dataclass(frozen=True)
class User:
    """An authenticated identity: the name and groups RBAC subjects are matched against."""

    name: str
    groups: tuple[str, ...] = ()
    admin: bool = False  # bypasses RBAC, like system:masters


@dataclass(frozen=True)
class Attributes:
    """`authorizer.Attributes` for one request."""

    user: User
    verb: str
    resource_request: bool
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True)
class Atom:
    """One permission from one rule of one role, e.g. `ClusterRole rotator-read: list networking.istio.io/gateways`."""

    role_kind: str
    role_namespace: str
    role_name: str
    verb: str
    group: str
    resource: str
    resource_name: str | None = None

    def text(self) -> str:
        role = f"{self.role_namespace}/{self.role_name}" if self.role_kind == "Role" else self.role_name
        target = f"{self.group}/{self.resource}" if self.group else self.resource
        names = f" [{self.resource_name}]" if self.resource_name is not None else ""
        return f"{self.role_kind} {role}: {self.verb} {target}{names}"

    def allows(self, attrs: Attributes) -> bool:
        if self.verb not in ("*", attrs.verb):
            return False
        if self.group not in ("*", attrs.api_group):
            return False
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        if self.resource not in ("*", combined) and not (
            attrs.subresource and self.resource == f"*/{attrs.subresource}"
        ):
            return False
        return self.resource_name is None or self.resource_name == attrs.name


@dataclass
class _Role:
    kind: str
    namespace: str
    name: str
    labels: Mapping[str, str]
    atoms: list[Atom] = field(default_factory=list)
    aggregation: list[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class _Binding:
    kind: str
    namespace: str
    name: str
    role_kind: str
    role_name: str
    subjects: tuple[Mapping[str, Any], ...]


def _expand(role_kind: str, namespace: str, name: str, rules: Iterable[Mapping[str, Any]]) -> list[Atom]:
    atoms: list[Atom] = []
    for rule in rules:
        resources = rule.get("resources") or []
        names: list[str | None] = list(rule.get("resourceNames") or []) or [None]
        for verb in rule.get("verbs") or []:
            for group in rule.get("apiGroups") or []:
                for resource in resources:
                    for resource_name in names:
                        atom = Atom(role_kind, namespace, name, verb, group, resource, resource_name)
                        if atom not in atoms:
                            atoms.append(atom)
    return atoms


class RBAC:
    """The roles and bindings from a list of manifests (anything that is not RBAC is ignored)."""

    def __init__(self, manifests: Iterable[Mapping[str, Any]]) -> None:
        self.cluster_roles: dict[str, _Role] = {}
        self.roles: dict[tuple[str, str], _Role] = {}
        self.cluster_bindings: list[_Binding] = []
        self.bindings: dict[str, list[_Binding]] = {}
        self.atoms: list[Atom] = []
        for doc in manifests:
            if not isinstance(doc, Mapping) or not str(doc.get("apiVersion", "")).startswith(
                "rbac.authorization.k8s.io/"
            ):
                continue
            meta = doc.get("metadata") or {}
            name = meta.get("name", "")
            namespace = meta.get("namespace") or "default"
            kind = doc.get("kind")
            if kind == "ClusterRole":
                role = _Role("ClusterRole", "", name, meta.get("labels") or {})
                role.atoms = _expand("ClusterRole", "", name, doc.get("rules") or [])
                agg = doc.get("aggregationRule")
                role.aggregation = list(agg.get("clusterRoleSelectors") or []) if agg else None
                self.cluster_roles[name] = role
                self.atoms += role.atoms
            elif kind == "Role":
                role = _Role("Role", namespace, name, meta.get("labels") or {})
                role.atoms = _expand("Role", namespace, name, doc.get("rules") or [])
                self.roles[(namespace, name)] = role
                self.atoms += role.atoms
            elif kind in ("ClusterRoleBinding", "RoleBinding"):
                ref = doc.get("roleRef") or {}
                binding = _Binding(
                    kind,
                    "" if kind == "ClusterRoleBinding" else namespace,
                    name,
                    ref.get("kind", ""),
                    ref.get("name", ""),
                    tuple(doc.get("subjects") or ()),
                )
                if kind == "ClusterRoleBinding":
                    self.cluster_bindings.append(binding)
                else:
                    self.bindings.setdefault(namespace, []).append(binding)

    def _cluster_role_atoms(self, name: str) -> list[Atom] | None:
        role = self.cluster_roles.get(name)
        if role is None:
            return None
        if role.aggregation is None:
            return role.atoms
        atoms = list(role.atoms)
        for other in self.cluster_roles.values():
            if other is role:
                continue
            for sel in role.aggregation:
                reqs = selector_from_label_selector(sel)
                if reqs is not None and labels_match(reqs, other.labels):
                    atoms += [a for a in other.atoms if a not in atoms]
                    break
        return atoms

    def _role_atoms(self, binding: _Binding) -> tuple[list[Atom] | None, str]:
        if binding.role_kind == "ClusterRole":
            return self._cluster_role_atoms(binding.role_name), (
                f'clusterrole.rbac.authorization.k8s.io "{binding.role_name}" not found'
            )
        if binding.role_kind == "Role" and binding.kind == "RoleBinding":
            role = self.roles.get((binding.namespace, binding.role_name))
            return (role.atoms if role else None), f'role.rbac.authorization.k8s.io "{binding.role_name}" not found'
        return None, f"unsupported role reference kind: {binding.role_kind!r}"

    @staticmethod
    def _applies(user: User, binding: _Binding) -> bool:
        for subject in binding.subjects:
            kind = subject.get("kind")
            if kind == "ServiceAccount":
                ns = subject.get("namespace") or binding.namespace
                if user.name == f"system:serviceaccount:{ns}:{subject.get('name')}":
                    return True
            elif (kind == "User" and subject.get("name") == user.name) or (
                kind == "Group" and subject.get("name") in user.groups
            ):
                return True
        return False

    def authorize(self, attrs: Attributes) -> tuple[bool, list[Atom], str]:
        """(allowed, every atom that allows it, reason).  The reason names bindings to missing roles, like RBAC's."""
        allowing: list[Atom] = []
        errors: list[str] = []
        candidates = list(self.cluster_bindings)
        if attrs.namespace:
            candidates += self.bindings.get(attrs.namespace, [])
        for binding in candidates:
            if not self._applies(attrs.user, binding):
                continue
            atoms, missing = self._role_atoms(binding)
            if atoms is None:
                errors.append(missing)
                continue
            allowing += [a for a in atoms if a.allows(attrs) and a not in allowing]
        reason = ""
        if errors and not allowing:
            reason = "RBAC: " + (errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]")
        return bool(allowing), allowing, reason


def forbidden_reason(attrs: Attributes) -> str:
    """`forbiddenMessage` from the authorization filter."""
    who = f'User "{attrs.user.name}"'
    if not attrs.resource_request:
        return f'{who} cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return f'{who} cannot {attrs.verb} resource "{resource}" in API group "{attrs.api_group}" {where}'
