"""The Tk side of :class:`tray_sync.dialogs.common.Worker`: daemon threads and an after() queue."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import tkinter as tk
from collections.abc import Callable
from typing import TypeVar

from tray_sync.dialogs.common import Post

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_MS = 40


class TkWorker:
    """Runs jobs on daemon threads; results come back on the Tk thread via a polled queue.

    Worker threads never touch Tk: they only put callables on the queue. Closing drops every
    result still on its way, so a window that went away is never called back.
    """

    def __init__(self, widget: tk.Misc) -> None:
        self._widget = widget
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._closed = False
        self._after_id: str | None = None
        self._running = 0
        self._lock = threading.Lock()

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running > 0

    def run(self, job: Callable[[Post], T], done: Callable[[T], None],
            failed: Callable[[BaseException], None]) -> None:
        if self._closed:
            return

        def post(fn: Callable[[], None]) -> None:
            if not self._closed:
                self._queue.put(fn)

        def body() -> None:
            try:
                result = job(post)
            except Exception as exc:
                error = exc
                post(lambda: failed(error))
            else:
                post(lambda: done(result))
            finally:
                with self._lock:
                    self._running -= 1

        with self._lock:
            self._running += 1
        threading.Thread(target=body, name="dialog-job", daemon=True).start()
        self._schedule()

    def _schedule(self) -> None:
        if self._after_id is None and not self._closed:
            self._after_id = self._widget.after(POLL_MS, self._drain)

    def _drain(self) -> None:
        self._after_id = None
        if self._closed:
            return
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                break
            try:
                fn()
            except Exception:
                log.exception("A dialog callback failed")
            if self._closed:
                return
        if self.busy or not self._queue.empty():
            self._schedule()

    def close(self) -> None:
        self._closed = True
        if self._after_id is not None:
            with contextlib.suppress(tk.TclError):
                self._widget.after_cancel(self._after_id)
            self._after_id = None
