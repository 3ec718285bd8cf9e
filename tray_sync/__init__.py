"""Immich Tray Sync: mirror Immich albums into local folders."""

from __future__ import annotations

__version__ = "0.1.0"
APP_NAME = "Immich Tray Sync"
APP_ID = "immich-tray-sync"
