"""The rewards marketplace: operators list rewards with a price and a stock; players redeem them
by burning tokens.

A redemption is one transaction that takes one unit of stock (a conditional ``UPDATE ... WHERE
stock > 0``, which row-locks the reward), burns the price from the player in the ledger and
records the redemption; it commits all of it or nothing. Locks are always taken in the order
reward row, then ledger head: the contended reward is queued on first and the territory-wide
head lock is held only for the burn and the commit, so concurrent redemptions cannot deadlock
and other appends are not held up behind a busy reward. Out of stock is decided before the
ledger is touched.
"""
