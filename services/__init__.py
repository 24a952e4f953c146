"""Domain services, one package per domain (see the README's layout table)."""
