"""Events: the outbox (written with the change), the relay to JetStream, and consumers."""
