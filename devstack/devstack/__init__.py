"""The local development stack: PostgreSQL, NATS JetStream and Redis on loopback.

Each ``ensure_*`` function reuses a server the machine already runs and otherwise starts
one of our own with its data under the project's data directory. ``oneheart stack`` wraps them.
"""
