"""The territory ledger: append-only, hash-chained entries, balances, signed Merkle checkpoints.

Accounts (``debit`` -> ``credit``; tokens and XP both move that way):

- ``mint``: the issuing account. Every token and XP point starts here; it is the only account
  whose balance goes negative (its balance is minus everything in circulation).
- ``burn``: where burnt tokens end; it only ever grows.
- ``pool:<name>``: shared funds, e.g. ``pool:territory`` (the territory's reward pool),
  ``pool:global``; ``<name>`` is 1-64 of ``a-z 0-9 _ -``.
- ``player:<uuid>``, ``sponsor:<uuid>``: a player (``global.users.id``) or a sponsor.

Kinds: ``mint`` (debit ``mint``), ``burn`` (credit ``burn``), ``transfer`` (neither), ``adjust``
(an operator's correction between any two accounts; needs a memo). Amounts are integers in
the token's smallest unit; the sum of all balances is always zero.
"""
