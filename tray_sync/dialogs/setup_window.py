"""The setup wizard's Tk window: a thin view over :class:`SetupPresenter`."""

from __future__ import annotations

import logging
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, messagebox, ttk

from tray_sync.dialogs.setup_presenter import (
    INTERVAL_CHOICES,
    KEY_HINT,
    NEW_ALBUM_CHOICES,
    PAGE_ALBUMS,
    PAGE_CONNECT,
    PAGE_OPTIONS,
    AlbumChoice,
    CertificateOffer,
    SetupOptions,
    SetupPresenter,
)
from tray_sync.dialogs.theme import WARNING, horizontal_scroll, pad, prepare_window, px, release

log = logging.getLogger(__name__)

CHECKED, UNCHECKED, LOCKED = "☑", "☐", "✓"


class SetupWindow:
    """Implements :class:`tray_sync.dialogs.setup_presenter.SetupView` with ttk widgets."""

    def __init__(self, root: tk.Misc) -> None:
        self.presenter: SetupPresenter | None = None
        self.window = tk.Toplevel(root)
        prepare_window(self.window, "Set up Immich Tray Sync", min_size=(640, 520))
        self.window.protocol("WM_DELETE_WINDOW", self._cancel)
        self.window.bind("<Escape>", lambda e: self._cancel())
        self.window.bind("<Return>", self._on_return)
        self.window.bind("<KP_Enter>", self._on_return)
        self.window.columnconfigure(0, weight=1)
        self.window.rowconfigure(1, weight=1)
        self._row_ids: dict[str, AlbumChoice] = {}
        self._build_header()
        self._pages = ttk.Frame(self.window, padding=(pad(self.window, 3), pad(self.window, 1)))
        self._pages.grid(row=1, column=0, sticky="nsew")
        self._pages.columnconfigure(0, weight=1)
        self._pages.rowconfigure(0, weight=1)
        self.page_frames = [self._build_connect(), self._build_albums(), self._build_options()]
        self._build_footer()
        self.window.geometry(f"{px(self.window, 760)}x{px(self.window, 620)}")

    def attach(self, presenter: SetupPresenter) -> None:
        self.presenter = presenter

    # -- building ------------------------------------------------------------------------

    def _build_header(self) -> None:
        w = self.window
        header = ttk.Frame(w, padding=(pad(w, 3), pad(w, 3), pad(w, 3), pad(w, 1)))
        header.grid(row=0, column=0, sticky="ew")
        header.columnconfigure(0, weight=1)
        self.title_label = ttk.Label(header, style="Title.TLabel")
        self.title_label.grid(row=0, column=0, sticky="w")
        self.step_label = ttk.Label(header, style="Muted.TLabel")
        self.step_label.grid(row=1, column=0, sticky="w", pady=(px(w, 2), 0))

    def _build_connect(self) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(self._pages)
        frame.columnconfigure(1, weight=1)
        ttk.Label(frame, text="Server address").grid(row=0, column=0, sticky="w", pady=pad(w))
        self.url_var = tk.StringVar(master=self.window)
        self.url_entry = ttk.Entry(frame, textvariable=self.url_var)
        self.url_entry.grid(row=0, column=1, columnspan=2, sticky="ew", padx=(pad(w, 2), 0))
        ttk.Label(frame, text="The address you open Immich at, e.g. https://photos.example.com",
                  style="Muted.TLabel").grid(row=1, column=1, columnspan=2, sticky="w", padx=(pad(w, 2), 0))

        ttk.Label(frame, text="API key").grid(row=2, column=0, sticky="w", pady=(pad(w, 2), pad(w)))
        self.key_var = tk.StringVar(master=self.window)
        self.key_entry = ttk.Entry(frame, textvariable=self.key_var, show="•")
        self.key_entry.grid(row=2, column=1, sticky="ew", padx=(pad(w, 2), pad(w)), pady=(pad(w, 2), pad(w)))
        self.show_key_var = tk.BooleanVar(master=self.window, value=False)
        self.show_key = ttk.Checkbutton(frame, text="Show", variable=self.show_key_var, command=self._toggle_show)
        self.show_key.grid(row=2, column=2, sticky="w", pady=(pad(w, 2), pad(w)))
        self.hint_label = ttk.Label(frame, text=KEY_HINT, style="Muted.TLabel", wraplength=px(w, 560),
                                    justify="left")
        self.hint_label.grid(row=3, column=1, columnspan=2, sticky="w", padx=(pad(w, 2), 0))

        self.check_button = ttk.Button(frame, text="Check connection", command=self._check)
        self.check_button.grid(row=4, column=1, sticky="w", padx=(pad(w, 2), 0), pady=(pad(w, 2), pad(w)))
        self.result_label = ttk.Label(frame, text="", wraplength=px(w, 560), justify="left")
        self.result_label.grid(row=5, column=1, columnspan=2, sticky="w", padx=(pad(w, 2), 0))

        self.cert_frame = ttk.Labelframe(frame, text="The server's certificate is not trusted")
        self.cert_frame.columnconfigure(0, weight=1)
        self.cert_label = ttk.Label(self.cert_frame, wraplength=px(w, 640), justify="left")
        self.cert_label.grid(row=0, column=0, sticky="w")
        self.fingerprint_label = ttk.Label(self.cert_frame, font="TkFixedFont", justify="left")
        self.fingerprint_label.grid(row=1, column=0, sticky="w", pady=(px(w, 4), 0))
        self.trust_button = ttk.Button(self.cert_frame, text="Trust this certificate", command=self._trust)
        self.trust_button.grid(row=2, column=0, sticky="w", pady=(pad(w), 0))

        for var in (self.url_var, self.key_var):
            var.trace_add("write", lambda *_: self._credentials_changed())
        return frame

    def _build_albums(self) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(self._pages)
        frame.columnconfigure(1, weight=1)
        frame.rowconfigure(2, weight=1)
        ttk.Label(frame, text="Save albums under").grid(row=0, column=0, sticky="w")
        self.root_var = tk.StringVar(master=self.window)
        root_entry = ttk.Entry(frame, textvariable=self.root_var, state="readonly", takefocus=False)
        root_entry.grid(row=0, column=1, sticky="ew", padx=pad(w))
        self.root_button = ttk.Button(frame, text="Change…", command=self._choose_root)
        self.root_button.grid(row=0, column=2, sticky="e")

        ttk.Label(frame, text="Filter").grid(row=1, column=0, sticky="w", pady=pad(w))
        self.filter_var = tk.StringVar(master=self.window)
        self.filter_entry = ttk.Entry(frame, textvariable=self.filter_var)
        self.filter_entry.grid(row=1, column=1, sticky="ew", padx=pad(w), pady=pad(w))
        self.filter_var.trace_add("write", lambda *_: self._filter_changed())

        table = ttk.Frame(frame)
        table.grid(row=2, column=0, columnspan=3, sticky="nsew")
        table.columnconfigure(0, weight=1)
        table.rowconfigure(0, weight=1)
        columns = ("sync", "album", "owner", "items", "size", "folder")
        self.tree = ttk.Treeview(table, columns=columns, show="headings", selectmode="browse", height=8)
        for column, text, width, anchor, stretch in (
            # together no wider than the list at the window's first size: no scrollbar until it is made smaller
            ("sync", "Sync", 56, "center", False), ("album", "Album", 174, "w", True),
            ("owner", "Owner", 110, "w", False), ("items", "Items", 62, "e", False),
            ("size", "Size", 80, "e", False), ("folder", "Folder", 210, "w", True),
        ):
            self.tree.heading(column, text=text, anchor=anchor if anchor != "e" else "e")
            self.tree.column(column, width=px(w, width), minwidth=px(w, min(width, 56)), anchor=anchor,
                             stretch=stretch)
        self.tree.tag_configure("problem", foreground="#b42318")
        self.tree.tag_configure("synced", foreground="#5b6573")
        self.tree.tag_configure("warning", foreground=WARNING)
        scroll = ttk.Scrollbar(table, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.grid(row=0, column=0, sticky="nsew")
        scroll.grid(row=0, column=1, sticky="ns")
        self.tree_xscroll = horizontal_scroll(self.tree, row=1)
        self.tree.bind("<Button-1>", self._tree_click)
        self.tree.bind("<space>", self._tree_space)
        self.tree.bind("<Double-1>", self._tree_double)

        buttons = ttk.Frame(frame)
        buttons.grid(row=3, column=0, columnspan=3, sticky="ew", pady=(pad(w), 0))
        ttk.Button(buttons, text="Select all", command=lambda: self._select_all(True)).pack(side="left")
        ttk.Button(buttons, text="Select none", command=lambda: self._select_all(False)).pack(
            side="left", padx=pad(w))
        self.folder_button = ttk.Button(buttons, text="Change folder…", command=self._choose_album_folder)
        self.folder_button.pack(side="left")
        self.summary_label = ttk.Label(frame, wraplength=px(w, 680), justify="left")
        self.summary_label.grid(row=4, column=0, columnspan=3, sticky="w", pady=(pad(w), 0))
        return frame

    def _build_options(self) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(self._pages)
        frame.columnconfigure(1, weight=1)
        ttk.Label(frame, text="Check for new photos").grid(row=0, column=0, sticky="w", pady=pad(w))
        self.interval_var = tk.StringVar(master=self.window)
        self.interval_box = ttk.Combobox(frame, textvariable=self.interval_var, state="readonly",
                                         values=[label for _, label in INTERVAL_CHOICES], width=22)
        self.interval_box.grid(row=0, column=1, sticky="w", padx=pad(w, 2), pady=pad(w))
        self.interval_box.bind("<<ComboboxSelected>>", lambda e: self._options_changed())

        self.autostart_var = tk.BooleanVar(master=self.window)
        self.autostart_check = ttk.Checkbutton(frame, text="Start Immich Tray Sync when I log in",
                                               variable=self.autostart_var, command=self._options_changed)
        self.autostart_check.grid(row=1, column=0, columnspan=2, sticky="w", pady=(pad(w), 0))
        self.notify_var = tk.BooleanVar(master=self.window)
        self.notify_check = ttk.Checkbutton(frame, text="Tell me when a sync finishes or needs my attention",
                                            variable=self.notify_var, command=self._options_changed)
        self.notify_check.grid(row=2, column=0, columnspan=2, sticky="w", pady=(pad(w), 0))

        group = ttk.Labelframe(frame, text="Albums created or shared with me later")
        group.grid(row=3, column=0, columnspan=2, sticky="ew", pady=(pad(w, 3), 0))
        self.policy_var = tk.StringVar(master=self.window)
        self.policy_buttons: dict[str, ttk.Radiobutton] = {}
        for row, (value, text) in enumerate(NEW_ALBUM_CHOICES):
            button = ttk.Radiobutton(group, text=text, value=value, variable=self.policy_var,
                                     command=self._options_changed)
            button.grid(row=row, column=0, sticky="w", pady=px(w, 2))
            self.policy_buttons[value] = button
        self.options_note = ttk.Label(frame, style="Muted.TLabel", wraplength=px(w, 600), justify="left",
                                      text="You can change all of this later in Settings.")
        self.options_note.grid(row=4, column=0, columnspan=2, sticky="w", pady=(pad(w, 3), 0))
        return frame

    def _build_footer(self) -> None:
        w = self.window
        ttk.Separator(w).grid(row=2, column=0, sticky="ew")
        footer = ttk.Frame(w, padding=(pad(w, 3), pad(w, 2)))
        footer.grid(row=3, column=0, sticky="ew")
        footer.columnconfigure(1, weight=1)
        self.busy_bar = ttk.Progressbar(footer, mode="indeterminate", length=px(w, 80))
        self.busy_label = ttk.Label(footer, style="Muted.TLabel")
        self.busy_label.grid(row=0, column=1, sticky="w", padx=pad(w))
        self.cancel_button = ttk.Button(footer, text="Cancel", command=self._cancel)
        self.back_button = ttk.Button(footer, text="Back", command=lambda: self.presenter and self.presenter.back())
        self.next_button = ttk.Button(footer, text="Next", style="Accent.TButton", command=self._next)
        self.back_button.grid(row=0, column=2, padx=(0, pad(w)))
        self.next_button.grid(row=0, column=3, padx=(0, pad(w)))
        self.cancel_button.grid(row=0, column=4)

    # -- SetupView -------------------------------------------------------------------------

    def show_page(self, page: int, title: str) -> None:
        for index, frame in enumerate(self.page_frames):
            if index == page:
                frame.grid(row=0, column=0, sticky="nsew")
            else:
                frame.grid_remove()
        self.title_label.configure(text=title)
        self.step_label.configure(text=f"Step {page + 1} of 3")
        focus = {PAGE_CONNECT: self.url_entry if not self.url_var.get() else self.key_entry,
                 PAGE_ALBUMS: self.tree, PAGE_OPTIONS: self.interval_box}[page]
        self.window.after_idle(lambda: focus.winfo_exists() and focus.focus_set())
        if page == PAGE_ALBUMS and not self.tree.selection():
            children = self.tree.get_children()
            if children:
                self.tree.selection_set(children[0])
                self.tree.focus(children[0])

    def set_nav(self, *, back: bool, next_label: str, next_enabled: bool, cancel: bool = True) -> None:
        self.back_button.configure(state="normal" if back else "disabled")
        self.cancel_button.configure(state="normal" if cancel else "disabled")
        self.next_button.configure(text=next_label, state="normal" if next_enabled else "disabled")
        self.check_button.configure(state="normal" if next_enabled or next_label != "Check" else "disabled")

    def set_busy(self, busy: bool, text: str = "") -> None:
        if busy:
            self.busy_bar.grid(row=0, column=0, sticky="w")
            self.busy_bar.start(15)
            self.busy_label.configure(text=text)
            self.window.configure(cursor="watch")
        else:
            self.busy_bar.stop()
            self.busy_bar.grid_remove()
            self.busy_label.configure(text="")
            self.window.configure(cursor="")

    def show_check_result(self, text: str, *, ok: bool) -> None:
        self.result_label.configure(text=text, style="Success.TLabel" if ok else "Error.TLabel")

    def show_certificate(self, offer: CertificateOffer | None) -> None:
        if offer is None:
            self.cert_frame.grid_remove()
            return
        self.cert_label.configure(text=(
            "Self-signed, or from a private authority. Trust it only if this SHA-256 fingerprint matches the "
            "one your server shows:"))
        pairs = offer.fingerprint.split(":")
        half = (len(pairs) + 1) // 2
        self.fingerprint_label.configure(text=":".join(pairs[:half]) + ":\n" + ":".join(pairs[half:]))
        self.cert_frame.grid(row=6, column=0, columnspan=3, sticky="ew", pady=(pad(self.window, 2), 0))

    def show_albums(self, rows: list[AlbumChoice]) -> None:
        selection = self.tree.selection()
        wanted = [r.album_id for r in rows]
        if list(self.tree.get_children()) != wanted:
            self.tree.delete(*self.tree.get_children())
            for row in rows:
                self.tree.insert("", "end", iid=row.album_id)
        self._row_ids = {r.album_id: r for r in rows}
        for row in rows:
            mark = LOCKED if row.already_synced else (CHECKED if row.selected else UNCHECKED)
            folder = row.note if (row.error or row.already_synced) else _short_path(row.folder)
            tags: tuple[str, ...] = ()
            if row.error and row.selected:
                tags = ("problem",)
            elif row.already_synced:
                tags = ("synced",)
            elif row.warning and row.selected:  # the folder holds other files: marked in its own row
                folder, tags = f"⚠ {folder}", ("warning",)
            self.tree.item(row.album_id, values=(mark, row.album.name, row.owner_text, row.album.asset_count,
                                                 row.size_text, folder), tags=tags)
        keep = [iid for iid in selection if self.tree.exists(iid)]
        if keep:
            self.tree.selection_set(keep)

    def show_selection_summary(self, text: str, *, problem: bool) -> None:
        self.summary_label.configure(text=text, style="Error.TLabel" if problem else "Muted.TLabel")

    def show_root_folder(self, path: str) -> None:
        self.root_var.set(_short_path(Path(path)))

    def show_options(self, options: SetupOptions, *, autostart_available: bool) -> None:
        label = next((text for minutes, text in INTERVAL_CHOICES if minutes == options.interval_minutes),
                     f"Every {options.interval_minutes} minutes")
        self.interval_var.set(label)
        self.autostart_var.set(options.autostart and autostart_available)
        self.autostart_check.configure(state="normal" if autostart_available else "disabled")
        self.notify_var.set(options.notifications)
        self.policy_var.set(options.new_album_policy)

    def show_credentials(self, url: str, key: str) -> None:
        self.url_var.set(url)
        self.key_var.set(key)

    def show_error(self, text: str) -> None:
        messagebox.showerror("Setup", text, parent=self.window)

    def close(self) -> None:
        if self.window.winfo_exists():
            self.set_busy(False)
            self.window.destroy()
        release(self)

    # -- events --------------------------------------------------------------------------

    def _on_return(self, event: tk.Event) -> str | None:
        if isinstance(event.widget, ttk.Button | tk.Button):
            event.widget.invoke()
            return "break"
        if str(self.next_button.cget("state")) != "disabled":
            self._next()
        return "break"

    def _next(self) -> None:
        if self.presenter:
            self._credentials_changed()
            self.presenter.next()

    def _check(self) -> None:
        if self.presenter:
            self.presenter.run_check(self.url_var.get(), self.key_var.get())

    def _trust(self) -> None:
        if self.presenter:
            self.presenter.trust_certificate()

    def _cancel(self) -> None:
        if self.presenter:
            self.presenter.cancel()
        else:
            self.close()

    def _filter_changed(self) -> None:
        if self.presenter:
            self.presenter.set_filter(self.filter_var.get())

    def _toggle_show(self) -> None:
        self.key_entry.configure(show="" if self.show_key_var.get() else "•")

    def _credentials_changed(self) -> None:
        if self.presenter:
            self.presenter.credentials_changed(self.url_var.get(), self.key_var.get())

    def _options_changed(self) -> None:
        if not self.presenter:
            return
        label = self.interval_var.get()
        minutes = next((m for m, text in INTERVAL_CHOICES if text == label), self.presenter.options.interval_minutes)
        self.presenter.set_options(interval_minutes=minutes, autostart=self.autostart_var.get(),
                                   notifications=self.notify_var.get(), new_album_policy=self.policy_var.get())

    def _tree_click(self, event: tk.Event) -> str | None:
        if self.tree.identify_region(event.x, event.y) != "cell":
            return None
        row = self.tree.identify_row(event.y)
        if row and self.tree.identify_column(event.x) == "#1" and self.presenter:
            self.tree.selection_set(row)
            self.tree.focus(row)
            self.presenter.toggle_album(row)
            return "break"
        return None

    def _tree_space(self, event: tk.Event) -> str:
        if self.presenter:
            for row in self.tree.selection():
                self.presenter.toggle_album(row)
        return "break"

    def _tree_double(self, event: tk.Event) -> str | None:
        row = self.tree.identify_row(event.y)
        if row and self.tree.identify_column(event.x) in ("#5", "#6"):
            self.tree.selection_set(row)
            self._choose_album_folder()
            return "break"
        return None

    def _select_all(self, selected: bool) -> None:
        if self.presenter:
            self.presenter.select_all_visible(selected)

    def _choose_root(self) -> None:
        if not self.presenter:
            return
        chosen = filedialog.askdirectory(parent=self.window, initialdir=str(_nearest(self.presenter.root_folder)),
                                         title="Where should the albums go?", mustexist=False)
        if chosen:
            self.presenter.set_root_folder(chosen)

    def _choose_album_folder(self) -> None:
        if not self.presenter:
            return
        selection = self.tree.selection()
        if not selection:
            return
        row = self._row_ids.get(selection[0])
        if row is None or row.already_synced:
            return
        chosen = filedialog.askdirectory(parent=self.window, initialdir=str(_nearest(row.folder.parent)),
                                         title=f"Folder for {row.album.name}", mustexist=False)
        if chosen:
            self.presenter.set_album_folder(row.album_id, chosen)
            self.presenter.toggle_album(row.album_id, True)


def _short_path(path: Path) -> str:
    try:
        return "~/" + str(path.expanduser().relative_to(Path.home()))
    except ValueError:
        return str(path)


def _nearest(path: Path) -> Path:
    current = path.expanduser()
    while not current.exists() and current != current.parent:
        current = current.parent
    return current
