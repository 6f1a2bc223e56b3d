"""A fake Kubernetes API server for tests: the real `kubernetes` client, a real socket, a fake cluster.

    from tests.support.fakeapi import FakeCluster

    with FakeCluster(rbac_manifests=docs) as cluster:
        api = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig(tmp_path / "kc")))
        ...

What it emulates and what it does not: docs/testing-fake-apiserver.md.
"""

from .cluster import FakeCluster, Request

__all__ = ["FakeCluster", "Request"]
