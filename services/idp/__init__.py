"""The node's built-in OpenID Connect provider (issuer ``<public_url>/oidc``).

For a single node, for tests and for development: accounts and clients live in the
registry's ``global`` schema (``oneheart user ...``, ``oneheart idp-client ...``), pending
logins, authorization codes and access tokens in Redis. Authorization code flow only, PKCE
(S256) required for public clients, ID tokens signed RS256 by a rotating key ring.
"""
