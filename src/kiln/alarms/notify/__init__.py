"""Alarm notification pipelines: who is told about which alarm, when, and how (webhook,
email), with every delivery recorded. `settings` and `pipeline` are pure; `service`,
`store` and `channels` do the I/O and are imported from there, not from here."""

from __future__ import annotations

from kiln.alarms.notify.settings import NotificationSettings

__all__ = ["NotificationSettings"]
