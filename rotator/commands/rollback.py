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
    from rotator.apply.rollback import copies_of, restore_together
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
        references, copies = copies_of(specs, namespace, name)
        together = restore_together(
            writer,
            namespace,
            name,
            references,
            [] if args.this_copy_only else copies,
            to=args.to,
            dry_run=args.dry_run,
            hold=not args.no_hold,
        )
    except ApiError as exc:
        return error(str(exc))
    if together.refused is not None:
        stdout.write(together.refused + "\n")
        return 2
    for outcome in together.outcomes:
        ns = outcome.namespace
        held = (
            ""
            if args.no_hold or outcome.status != "rolled-back"
            else (f"; renewal paused (resume: kubectl annotate secret -n {ns} {name} rotator.io/renewal-)")
        )
        stdout.write(f"{ns}/{name}: {outcome.status}: {outcome.message}{held}\n")
    return 0 if all(o.status == "rolled-back" for o in together.outcomes) else 2
