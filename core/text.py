"""Patterns for free text fields. Postgres cannot store NUL in text: refuse it at the edge
(400) instead of failing in the database (500)."""

VISIBLE = r"^[^\x00]*[^\x00\s][^\x00]*$"  # no NUL, at least one visible character
NO_NUL = r"^[^\x00]*$"
