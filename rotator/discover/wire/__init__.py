"""Raw Kubernetes objects → the typed inventory: the one place that knows the wire shapes.

``inventory.build_inventory`` dispatches each object to its kind's parser (``istio``,
``gateway_api``, ``core``); ``fields`` holds the typed accessors they share, which turn a
wrong shape into ``Malformed`` naming the field path."""
