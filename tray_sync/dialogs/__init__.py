"""The app's windows: first-run setup, settings and status, each a Toplevel of one Tk root.

Logic lives in presenters (``*_presenter.py``, no tkinter) driven through Protocol views, so it
is tested without a display; the Tk views (``*_window.py``) only show and forward.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tray_sync.dialogs.host import DialogHost

__all__ = ["DialogHost"]


def __getattr__(name: str) -> Any:
    # Lazy: importing tray_sync.dialogs must not import tkinter (headless commands, presenter tests).
    if name == "DialogHost":
        from tray_sync.dialogs.host import DialogHost

        return DialogHost
    raise AttributeError(name)
