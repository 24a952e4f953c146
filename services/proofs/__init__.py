"""Proofs: a player's evidence (photo or video in IPFS, with place and time) for an assignment."""
