"""``rotator rollback``: restore a Secret and its namespace copies from rotator's backup,
all or none, and pause renewal of it until someone says otherwise."""

from __future__ import annotations

import argparse
from typing import TextIO

from rotator.commands.common import api_from_args, error


def rollback_command(args: argparse.Namespace, stdout: TextIO) -> int:
    from rotator.config.load import ConfigError, load_config
    from rotator.util import logs

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        return error(str(exc))
    logs.configure(args.log_level or config.logging.level, args.log_format or config.logging.format)
    namespace, slash, name = args.secret.partition("/")
    if not slash or not namespace or not name:
        return error(f"rollback: expected NAMESPACE/NAME, got {args.secret!r}")
    api = api_from_args(args)
    if isinstance(api, int):
        return api
    from rotator.apply.secret_bodies import ANN_BACKUP_AT, ANN_SERIAL
    from rotator.apply.secret_writer import SecretWriter
    from rotator.checks.certs import utcnow
    from rotator.discover.cluster import read_cluster
    from rotator.discover.collect import DiscoveryOptions
    from rotator.discover.credentials import discover
    from rotator.kube.api import ApiError
    from rotator.kube.events import EventRecorder

    writer = SecretWriter(api, utcnow, EventRecorder(api, utcnow))
    try:
        if args.list:
            for b in writer.backups(namespace, name):
                ann = b["metadata"].get("annotations") or {}
                stdout.write(
                    f"{b['metadata']['name']}\tbacked up {ann.get(ANN_BACKUP_AT, '?')}\t"
                    f"serial {ann.get(ANN_SERIAL, '?')}\n"
                )
            return 0
        options = DiscoveryOptions(scope_gateway_to_namespace=config.discovery.scope_gateway_to_namespace)
        specs, _ = discover(read_cluster(api, options).inventory, options)
    except ApiError as exc:
        return error(str(exc))
    from rotator.plan.copies import copy_key

    primary = next((s for s in specs if (s.namespace, s.name, s.role) == (namespace, name, "server")), None)
    references = list(primary.references) if primary is not None else []
    # Istio reads a classic Gateway's Secret in each gateway namespace, and rotator keeps
    # those copies on one certificate: a rollback restores them together, or not at all.
    key = copy_key(primary) if primary is not None else None
    copies = sorted({s.namespace for s in specs if key is not None and copy_key(s) == key and s.namespace != namespace})
    if args.this_copy_only:
        copies = []
    try:
        first = writer.rollback(namespace, name, references, to=args.to, dry_run=True)
        if first.status != "rolled-back" or not first.serial:
            stdout.write(f"{namespace}/{name}: {first.status}: {first.message}\n")
            return 2
        plan = [(namespace, first.backup)]
        for ns in copies:
            backup = writer.backup_with_serial(ns, name, first.serial)
            if backup is None:
                stdout.write(
                    f"{ns}/{name}: failed: no backup holds serial {first.serial}; nothing was restored "
                    "(--this-copy-only restores only the Secret named)\n"
                )
                return 2
            check = writer.rollback(ns, name, references, to=backup, dry_run=True)
            if check.status != "rolled-back":
                stdout.write(f"{ns}/{name}: {check.status}: {check.message}; nothing was restored\n")
                return 2
            plan.append((ns, backup))
        failed = False
        for ns, backup in plan:
            outcome = writer.rollback(ns, name, references, to=backup, dry_run=args.dry_run, hold=not args.no_hold)
            held = (
                ""
                if args.no_hold or outcome.status != "rolled-back"
                else (f"; renewal paused (resume: kubectl annotate secret -n {ns} {name} rotator.io/renewal-)")
            )
            stdout.write(f"{ns}/{name}: {outcome.status}: {outcome.message}{held}\n")
            failed = failed or outcome.status != "rolled-back"
    except ApiError as exc:
        return error(str(exc))
    return 2 if failed else 0
