"""Impact: what an approved proof pays (XP, Heart tokens), levels, badges.

``rules`` is the arithmetic (documented formulas), ``payout`` the worker handlers that pay each
approved proof once, ``badges`` the definitions (``public.badge_definitions``) and awarding.
"""
