"""Notifications: stored per player in the territory, listed, marked read, and streamed live (SSE)."""
