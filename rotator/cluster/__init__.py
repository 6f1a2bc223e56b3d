"""Everything that talks to the Kubernetes API: client set-up, reads, safe writes, events."""
