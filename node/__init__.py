"""The node: the Litestar app, the worker and the ``oneheart`` CLI, assembled from the domains.

The deployable sits on top of every layer; nothing imports it."""
