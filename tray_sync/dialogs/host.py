"""DialogHost: opens each dialog once, as a Toplevel of the app's one Tk root."""

from __future__ import annotations

import logging
import tkinter as tk
from collections.abc import Callable
from typing import Any

from tray_sync.appstate import AppController
from tray_sync.context import Context
from tray_sync.dialogs.theme import apply_theme

log = logging.getLogger(__name__)


class DialogHost:
    """The tray app's handle on its windows. Call from the Tk thread only.

    Each ``open_*`` creates its window, or raises and focuses the one already open.
    """

    def __init__(self, root: tk.Tk, controller: AppController, ctx: Context) -> None:
        self.root = root
        self.controller = controller
        self.ctx = ctx
        self._open: dict[str, Any] = {}  # name -> presenter (each has .view.window and .cancel/close)
        apply_theme(root)

    # -- windows -------------------------------------------------------------------------

    def open_setup(self, connection_id: int | None = None) -> None:
        """The first-run wizard; with ``connection_id``, adds albums of that connection."""
        if self._raise("setup"):
            return
        from tray_sync.dialogs.setup_presenter import SetupPresenter
        from tray_sync.dialogs.setup_window import SetupWindow
        from tray_sync.dialogs.tk_worker import TkWorker

        view = SetupWindow(self.root)
        forget = self._closed("setup")

        def closed() -> None:
            forget()
            settings = self._open.get("settings")
            if settings is not None and not settings.closed:
                settings.reload()  # show what the wizard added

        presenter = SetupPresenter(view, self.ctx, self.controller, TkWorker(view.window), on_closed=closed)
        view.attach(presenter)
        self._open["setup"] = presenter
        presenter.start()
        if connection_id is not None:
            presenter.start_for_connection(connection_id)
        self._focus(view.window)

    def open_settings(self) -> None:
        if self._raise("settings"):
            return
        from tray_sync.dialogs.settings_presenter import SettingsPresenter
        from tray_sync.dialogs.settings_window import SettingsWindow
        from tray_sync.dialogs.tk_worker import TkWorker

        view = SettingsWindow(self.root)
        presenter = SettingsPresenter(view, self.ctx, self.controller, TkWorker(view.window),
                                      open_setup=self.open_setup, on_closed=self._closed("settings"))
        view.attach(presenter)
        self._open["settings"] = presenter
        presenter.start()
        self._focus(view.window)

    def open_status(self) -> None:
        if self._raise("status"):
            return
        from tray_sync.dialogs.status_presenter import StatusPresenter
        from tray_sync.dialogs.status_window import StatusWindow

        view = StatusWindow(self.root)
        from tray_sync.dialogs.common import offered_album_folder

        presenter = StatusPresenter(
            view, self.controller, on_closed=self._closed("status"), open_settings=self.open_settings,
            open_setup=self.open_setup, review_removals=self.review_removals,
            offer_folder=lambda offer: str(offered_album_folder(self.ctx.store, offer.connection_id, offer.name)))
        view.attach(presenter)
        self._open["status"] = presenter
        presenter.start()
        self._focus(view.window)

    def review_removals(self, album_sync_id: int) -> None:
        """Settings, Albums tab, that album, and its held removals listed for the user's OK."""
        self.open_settings()
        presenter = self._open.get("settings")
        if presenter is None:
            return
        presenter.view.show_album(album_sync_id)
        presenter.release_held(album_sync_id)

    def close_all(self) -> None:
        for name in list(self._open):
            presenter = self._open.pop(name, None)
            if presenter is None:
                continue
            try:
                presenter.close()
            except tk.TclError:
                log.debug("Window %s was already gone", name)

    # -- helpers -------------------------------------------------------------------------

    def window(self, name: str) -> tk.Toplevel | None:
        """The open window called ``name`` ('setup', 'settings', 'status'), for tests and the app."""
        presenter = self._open.get(name)
        return presenter.view.window if presenter is not None else None

    def presenter(self, name: str) -> Any | None:
        return self._open.get(name)

    def _closed(self, name: str) -> Callable[[], None]:
        def forget() -> None:
            self._open.pop(name, None)

        return forget

    def _raise(self, name: str) -> bool:
        presenter = self._open.get(name)
        if presenter is None:
            return False
        window = presenter.view.window
        if not window.winfo_exists():
            self._open.pop(name, None)
            return False
        window.deiconify()
        self._focus(window)
        return True

    @staticmethod
    def _focus(window: tk.Toplevel) -> None:
        window.lift()
        try:
            window.focus_force()
        except tk.TclError:
            log.debug("Could not focus the window", exc_info=True)
