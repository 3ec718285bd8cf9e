"""The status window's Tk view: state, progress, albums, recent activity and the main actions."""

from __future__ import annotations

import logging
import tkinter as tk
from tkinter import ttk

from tray_sync.appstate import OfferedAlbum
from tray_sync.dialogs import theme
from tray_sync.dialogs.status_presenter import ActivityLine, StatusPresenter, StatusRow
from tray_sync.dialogs.theme import pad, prepare_window, px, release

log = logging.getLogger(__name__)

LEVEL_COLOURS = {"ok": theme.SUCCESS, "busy": theme.ACCENT, "muted": "#8c96a3", "warning": theme.WARNING,
                 "error": theme.ERROR}
REFRESH_MS = 30_000


class StatusWindow:
    """Implements :class:`tray_sync.dialogs.status_presenter.StatusView`."""

    def __init__(self, root: tk.Misc) -> None:
        self.presenter: StatusPresenter | None = None
        w = self.window = tk.Toplevel(root)
        prepare_window(w, "Immich Tray Sync — Status", min_size=(620, 460))
        w.protocol("WM_DELETE_WINDOW", self._close)
        w.bind("<Escape>", lambda e: self._close())
        w.columnconfigure(0, weight=1)
        w.rowconfigure(3, weight=3)
        w.rowconfigure(5, weight=2)
        self._offer_widgets: list[ttk.Frame] = []
        self._shown_activity: list[ActivityLine] | None = None
        self._shown_notices: tuple[list[str], list[OfferedAlbum]] | None = None
        self._build_header()
        self._build_progress()
        self._build_notices()
        self._build_albums()
        self._build_activity()
        self._build_buttons()
        w.geometry(f"{px(w, 880)}x{px(w, 680)}")
        theme.fit_min_width(w, (620, 460), self.button_bar)
        self._refresh_id = w.after(REFRESH_MS, self._tick)

    def attach(self, presenter: StatusPresenter) -> None:
        self.presenter = presenter

    # -- building ------------------------------------------------------------------------

    def _build_header(self) -> None:
        w = self.window
        header = ttk.Frame(w, padding=(pad(w, 3), pad(w, 3), pad(w, 3), pad(w, 1)))
        header.grid(row=0, column=0, sticky="ew")
        header.columnconfigure(1, weight=1)
        size = px(w, 14)
        self.dot = tk.Canvas(header, width=size, height=size, highlightthickness=0, background=theme.BACKGROUND)
        self.dot.grid(row=0, column=0, padx=(0, pad(w)))
        self._dot = self.dot.create_oval(1, 1, size - 1, size - 1, fill="#8c96a3", outline="")
        self.headline = ttk.Label(header, style="Title.TLabel")
        self.headline.grid(row=0, column=1, sticky="w")
        self.detail = ttk.Label(header, wraplength=px(w, 740), justify="left")
        self.detail.grid(row=1, column=0, columnspan=2, sticky="w", pady=(px(w, 4), 0))
        header.bind("<Configure>", lambda e: self.detail.configure(wraplength=max(px(w, 200), e.width - pad(w))))

    def _build_progress(self) -> None:
        w = self.window
        self.progress_frame = ttk.Frame(w, padding=(pad(w, 3), pad(w, 1)))
        self.progress_frame.grid(row=1, column=0, sticky="ew")
        self.progress_frame.columnconfigure(0, weight=1)
        self.progress = ttk.Progressbar(self.progress_frame, mode="determinate", maximum=1000)
        self.progress.grid(row=0, column=0, sticky="ew")
        self.progress_text = ttk.Label(self.progress_frame, style="Muted.TLabel")
        self.progress_text.grid(row=1, column=0, sticky="w", pady=(px(w, 4), 0))
        self.progress_frame.grid_remove()

    def _build_notices(self) -> None:
        w = self.window
        self.notice_frame = ttk.Frame(w, padding=(pad(w, 3), 0))
        self.notice_frame.grid(row=2, column=0, sticky="ew")
        self.notice_frame.columnconfigure(0, weight=1)
        self.notice_label = ttk.Label(self.notice_frame, style="Warning.TLabel", wraplength=px(w, 620),
                                      justify="left")
        self.review_button = ttk.Button(self.notice_frame, text="Review removals…",
                                        command=lambda: self.presenter and self.presenter.review_removals())

    def _section(self, row: int, title: str) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(w, padding=(pad(w, 3), pad(w, 1), pad(w, 3), 0))
        frame.grid(row=row, column=0, sticky="nsew")
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(1, weight=1)
        ttk.Label(frame, text=title, style="Heading.TLabel").grid(row=0, column=0, sticky="w", pady=(0, px(w, 4)))
        return frame

    def _build_albums(self) -> None:
        w = self.window
        frame = self._section(3, "Albums")
        columns = ("name", "folder", "last", "files", "size", "state")
        self.albums = ttk.Treeview(frame, columns=columns, show="headings", selectmode="browse", height=6)
        for column, text, width, anchor, stretch in (
            ("name", "Album", 140, "w", True), ("folder", "Folder", 170, "w", True),
            ("last", "Last sync", 150, "w", False), ("files", "Files", 55, "e", False),
            ("size", "Size", 75, "e", False), ("state", "State", 210, "w", True),
        ):
            self.albums.heading(column, text=text, anchor=anchor)
            self.albums.column(column, width=px(w, width), minwidth=px(w, 50), anchor=anchor, stretch=stretch)
        self.albums.tag_configure("problem", foreground=theme.ERROR)
        scroll = ttk.Scrollbar(frame, orient="vertical", command=self.albums.yview)
        self.albums.configure(yscrollcommand=scroll.set)
        self.albums.grid(row=1, column=0, sticky="nsew")
        scroll.grid(row=1, column=1, sticky="ns")
        self.albums_xscroll = theme.horizontal_scroll(self.albums, row=2)
        self.album_detail = ttk.Label(frame, style="Muted.TLabel", wraplength=px(w, 780), justify="left")
        self.album_detail.grid(row=3, column=0, columnspan=2, sticky="w", pady=(px(w, 4), 0))
        self._rows: dict[str, StatusRow] = {}
        self.albums.bind("<<TreeviewSelect>>", self._album_selected)
        self.albums.bind("<Double-1>", lambda e: self._open_folder())
        self.albums.bind("<Return>", lambda e: (self._open_folder(), "break")[1])

    def _build_activity(self) -> None:
        w = self.window
        frame = self._section(5, "Recent activity")
        self.activity = ttk.Treeview(frame, columns=("when", "what"), show="headings", selectmode="none", height=4)
        self.activity.heading("when", text="When", anchor="w")
        self.activity.heading("what", text="What happened", anchor="w")
        self.activity.column("when", width=px(w, 150), stretch=False, anchor="w")
        self.activity.column("what", width=px(w, 560), stretch=True, anchor="w")
        self.activity.tag_configure("error", foreground=theme.ERROR)
        scroll = ttk.Scrollbar(frame, orient="vertical", command=self.activity.yview)
        self.activity.configure(yscrollcommand=scroll.set)
        self.activity.grid(row=1, column=0, sticky="nsew")
        scroll.grid(row=1, column=1, sticky="ns")
        self.activity_empty = ttk.Label(frame, text="Nothing yet: what each sync downloads shows up here.",
                                        style="Muted.TLabel")

    def _build_buttons(self) -> None:
        w = self.window
        bar = self.button_bar = ttk.Frame(w, padding=(pad(w, 3), pad(w, 2)))
        bar.grid(row=6, column=0, sticky="ew")
        bar.columnconfigure(4, weight=1)
        self.sync_button = ttk.Button(bar, text="Sync now", style="Accent.TButton", command=self._sync_now)
        self.pause_button = ttk.Button(bar, text="Pause", command=self._toggle_pause)
        self.folder_button = ttk.Button(bar, text="Open folder", command=self._open_folder)
        self.log_button = ttk.Button(bar, text="Open log", command=lambda: self.presenter and self.presenter.open_log())
        self.settings_button = ttk.Button(bar, text="Settings…",
                                          command=lambda: self.presenter and self.presenter.open_settings())
        self.close_button = ttk.Button(bar, text="Close", command=self._close)
        for column, button in enumerate((self.sync_button, self.pause_button, self.folder_button, self.log_button)):
            button.grid(row=0, column=column, padx=(0, pad(w)))
        self.settings_button.grid(row=0, column=5, padx=(0, pad(w)))
        self.close_button.grid(row=0, column=6)

    # -- StatusView ----------------------------------------------------------------------

    def show_state(self, headline: str, detail: str, level: str) -> None:
        self.headline.configure(text=headline)
        self.detail.configure(text=detail, style="Error.TLabel" if level == "error" else "TLabel")
        self.dot.itemconfigure(self._dot, fill=LEVEL_COLOURS.get(level, "#8c96a3"))

    def show_progress(self, fraction: float | None, text: str) -> None:
        if fraction is None:
            self.progress.stop()
            self.progress_frame.grid_remove()
            return
        self.progress_frame.grid()
        if fraction < 0:
            if str(self.progress.cget("mode")) != "indeterminate":
                self.progress.configure(mode="indeterminate")
                self.progress.start(15)
        else:
            if str(self.progress.cget("mode")) != "determinate":
                self.progress.stop()
                self.progress.configure(mode="determinate")
            self.progress.configure(value=round(fraction * 1000))
        self.progress_text.configure(text=text)

    def show_albums(self, rows: list[StatusRow]) -> None:
        wanted = [r.key for r in rows]
        if list(self.albums.get_children()) != wanted:
            self.albums.delete(*self.albums.get_children())
            for row in rows:
                self.albums.insert("", "end", iid=row.key)
        self._rows = {r.key: r for r in rows}
        self._show_album_detail()
        for row in rows:
            self.albums.item(row.key, values=(row.name, _short_path(row.folder), row.last_sync, row.files, row.size,
                                              row.state), tags=("problem",) if row.problem else ())

    def show_activity(self, lines: list[ActivityLine]) -> None:
        # Snapshots arrive several times a second while syncing: redraw only what changed, so the
        # list does not flicker or jump back to the top under the user's scrolling.
        if lines == self._shown_activity:
            return
        self._shown_activity = list(lines)
        self.activity.delete(*self.activity.get_children())
        for line in lines:
            self.activity.insert("", "end", values=(line.when, line.text), tags=("error",) if line.is_error else ())
        if lines:
            self.activity_empty.place_forget()
        else:
            self.activity_empty.place(in_=self.activity, relx=0.5, rely=0.55, anchor="center")

    def show_notices(self, lines: list[str], offers: list[OfferedAlbum]) -> None:
        if (lines, offers) == self._shown_notices:
            return  # rebuilding would destroy a button under the user's pointer
        self._shown_notices = (list(lines), list(offers))
        w = self.window
        for widget in self._offer_widgets:
            widget.destroy()
        self._offer_widgets = []
        if lines:
            self.notice_label.configure(text="\n".join(lines))
            self.notice_label.grid(row=0, column=0, sticky="w", pady=(0, pad(w)))
        else:
            self.notice_label.grid_remove()
        for index, offer in enumerate(offers):
            row = ttk.Frame(self.notice_frame)
            row.grid(row=index + 1, column=0, sticky="ew", pady=(0, px(w, 4)))
            row.columnconfigure(0, weight=1)
            ttk.Label(row, text=f"New album on the server: {offer.label}. Keep it on this computer too?").grid(
                row=0, column=0, sticky="w")
            ttk.Button(row, text="Sync it", command=lambda o=offer: self._add_offer(o)).grid(
                row=0, column=1, padx=(pad(w), 0))
            ttk.Button(row, text="Not now", command=lambda o=offer: self._dismiss_offer(o)).grid(
                row=0, column=2, padx=(pad(w), 0))
            self._offer_widgets.append(row)

    def show_review(self, visible: bool) -> None:
        if visible:
            self.review_button.grid(row=0, column=1, sticky="ne", padx=(pad(self.window), 0),
                                    pady=(0, pad(self.window)))
        else:
            self.review_button.grid_remove()

    def set_actions(self, *, sync_enabled: bool, pause_label: str, folder_enabled: bool,
                    sync_label: str = "Sync now") -> None:
        self.sync_button.configure(state="normal" if sync_enabled else "disabled", text=sync_label)
        self.pause_button.configure(text=pause_label)
        self.folder_button.configure(state="normal" if folder_enabled else "disabled")

    def close(self) -> None:
        if self.window.winfo_exists():
            self.progress.stop()
            self.window.after_cancel(self._refresh_id)
            self.window.destroy()
        release(self)

    # -- events --------------------------------------------------------------------------

    def _tick(self) -> None:
        if self.presenter and not self.presenter.closed:
            self.presenter.refresh()
            self._refresh_id = self.window.after(REFRESH_MS, self._tick)

    def _close(self) -> None:
        if self.presenter:
            self.presenter.close()
        else:
            self.close()

    def _sync_now(self) -> None:
        if self.presenter:
            self.presenter.sync_now()

    def _toggle_pause(self) -> None:
        if self.presenter:
            self.presenter.toggle_pause()

    def _open_folder(self) -> None:
        if self.presenter:
            self.presenter.open_folder()

    def _album_selected(self, event: tk.Event) -> None:
        selection = self.albums.selection()
        if self.presenter:
            self.presenter.select_album(selection[0] if selection else None)
        self._show_album_detail()

    def _show_album_detail(self) -> None:
        selection = self.albums.selection()
        row = self._rows.get(selection[0]) if selection else None
        if row is None:
            self.album_detail.configure(text="Select an album to see its folder and state in full.",
                                        style="Muted.TLabel")
        else:
            self.album_detail.configure(text=f"{row.name}: {row.state.rstrip('.')}. Folder: {_short_path(row.folder)}",
                                        style="Error.TLabel" if row.problem else "Muted.TLabel")

    def _add_offer(self, offer: OfferedAlbum) -> None:
        if self.presenter:
            self.presenter.add_offer(offer)

    def _dismiss_offer(self, offer: OfferedAlbum) -> None:
        if self.presenter:
            self.presenter.dismiss_offer(offer)


def _short_path(path: str) -> str:
    from pathlib import Path

    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return path
