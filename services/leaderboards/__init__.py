"""Leaderboards: XP from approved proofs, in Redis sorted sets, rebuilt from the ledger on demand.

The ledger is the truth; Redis only holds a view of it. Keys (``<p>`` this node's prefix,
``core.redis.prefix``: ``oh:<node id>`` unless ``OH_REDIS_KEY_PREFIX`` is set; ``<t>`` a
territory code)::

    <p>:lb:<t>:<scope>:<period>   sorted set, member = player id, score = XP
        scope:  all | zone:<zone uuid>
        period: all | day:YYYY-MM-DD | week:YYYY-Www   (UTC; ISO weeks; day/week keys expire)
    <p>:lb:<t>:applied            bitmap: bit <seq> set once ledger entry <seq> was counted
    <p>:lb:<t>:keys               set of every board key of the territory
    <p>:lb:<t>:ledger             the ledger mirrored: hash of its entry 1 (hex), or "empty"

Every change goes through one Lua script that checks the ledger and then sets the entry's bit
first, so an entry is counted once whoever applies it (the ``payout.made`` consumer, a
redelivery, or the catch-up after a rebuild), and never on boards of another ledger: those the
consumer rebuilds from the ledger first (a recreated or restored territory, an emptied Redis).
``oneheart leaderboard rebuild CODE`` recounts from a ledger snapshot under temporary keys and
swaps them in atomically, then applies what came after the snapshot.
"""
