"""Heart tokens: balances, player-to-player transfers, sponsors' contributions to pools.

Every token movement is a ledger entry (services/ledger); this package adds the rules and the
record of who funded which pool.

**Contributions.** A sponsor's real-world money stays outside the ledger (it is paid and
accounted for elsewhere). What enters the ledger is its token side: a ``mint`` entry into the
pool account (``pool:territory`` or ``pool:global``) with ``ref_type = 'contribution'``, ``ref_id``
the ``contributions`` row, and the memo naming the sponsor (``sponsor:<uuid> ...``). So the
hash-chained ledger itself records who funded what, and the sponsor holds no token balance.

**The global pool.** Ledgers are per territory and no entry can span two of them (there is no
transaction across database servers). So the shared global pool is federated: every territory's
ledger has a ``pool:global`` account holding the share contributed there, spendable only there,
and ``GET /api/pools/global`` sums the shares of every territory in the registry (one query per
database server). Moving a share between territories would need a burn in one ledger and a
mint in the other under an agreed protocol; nothing does that yet.
"""
