"""Quests: what a player can do in a zone, and their assignments (a player's run at a quest)."""
