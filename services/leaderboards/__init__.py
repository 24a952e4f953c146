"""Leaderboards: XP from approved proofs, in Redis sorted sets, rebuilt from the ledger on demand.

The ledger is the truth; Redis only holds a view of it. Keys (``<t>`` a territory code)::

    oh:lb:<t>:<scope>:<period>   sorted set, member = player id, score = XP
        scope:  all | zone:<zone uuid>
        period: all | day:YYYY-MM-DD | week:YYYY-Www   (UTC; ISO weeks; day/week keys expire)
    oh:lb:<t>:applied            bitmap: bit <seq> set once ledger entry <seq> was counted
    oh:lb:<t>:keys               set of every board key of the territory

Every change goes through one Lua script that sets the entry's bit first, so an entry is
counted once whoever applies it (the ``payout.made`` consumer, a redelivery, or the catch-up
after a rebuild). ``oneheart leaderboard rebuild CODE`` recounts from a ledger snapshot under
temporary keys and swaps them in atomically, then applies what came after the snapshot.
"""
