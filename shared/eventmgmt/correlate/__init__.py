"""Correlate: which incident an event belongs to, its root cause, and the incident lifecycle."""
