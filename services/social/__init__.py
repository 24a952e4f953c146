"""Social validation: witnesses vote on proofs that need the community (in Matrix rooms through
the gateway in ``federation/``, or through the web API); a per-territory quorum decides."""
