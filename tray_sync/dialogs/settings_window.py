"""The settings window's Tk view: General, Albums and Connections tabs, Save and Cancel."""

from __future__ import annotations

import logging
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, messagebox, ttk
from typing import Any

from tray_sync.dialogs import theme
from tray_sync.dialogs.settings_presenter import (
    LOG_LEVELS,
    NUMBER_FIELDS,
    POLICY_LABELS,
    AlbumRow,
    ConnectionRow,
    SettingsPresenter,
)
from tray_sync.dialogs.theme import pad, prepare_window, px, release

log = logging.getLogger(__name__)

KEEP, TRASH = "Keep them here", "Move them to the album's trash folder"
LOG_LABELS = {"INFO": "Normal", "DEBUG": "Detailed (for bug reports)", "WARNING": "Warnings and errors only",
              "ERROR": "Errors only"}


class SettingsWindow:
    """Implements :class:`tray_sync.dialogs.settings_presenter.SettingsView`."""

    def __init__(self, root: tk.Misc) -> None:
        self.presenter: SettingsPresenter | None = None
        w = self.window = tk.Toplevel(root)
        prepare_window(w, "Immich Tray Sync — Settings", min_size=(640, 520))
        w.protocol("WM_DELETE_WINDOW", self._cancel)
        w.bind("<Escape>", lambda e: self._cancel())
        w.bind("<Return>", self._on_return)
        w.columnconfigure(0, weight=1)
        w.rowconfigure(0, weight=1)
        self.vars: dict[str, tk.Variable] = {}
        self.error_labels: dict[str, ttk.Label] = {}
        self.inputs: dict[str, ttk.Spinbox] = {}
        self._loading = False
        self._album_rows: dict[str, AlbumRow] = {}
        self._connection_rows: dict[str, ConnectionRow] = {}
        self.edit_dialog: EditConnectionDialog | None = None
        self.notebook = ttk.Notebook(w)
        self.notebook.grid(row=0, column=0, sticky="nsew", padx=pad(w, 2), pady=(pad(w, 2), 0))
        self.general = self._build_general()
        self.albums_tab = self._build_albums()
        self.connections_tab = self._build_connections()
        self.notebook.add(self.general, text="General")
        self.notebook.add(self.albums_tab, text="Albums")
        self.notebook.add(self.connections_tab, text="Connections")
        self._build_footer()
        w.geometry(f"{px(w, 800)}x{px(w, 640)}")
        theme.fit_min_width(w, (640, 520), self.album_buttons, self.connection_buttons)

    def attach(self, presenter: SettingsPresenter) -> None:
        self.presenter = presenter

    # -- building ------------------------------------------------------------------------

    def _number(self, parent: ttk.Frame | ttk.Labelframe, row: int, name: str, before: str, after: str,
                column: int = 0) -> ttk.Spinbox:
        w = self.window
        low, high, _ = NUMBER_FIELDS[name]
        if before:
            ttk.Label(parent, text=before).grid(row=row, column=column, sticky="w", pady=(pad(w), 0),
                                                padx=(0, pad(w)))
        var = tk.StringVar(master=self.window)
        self.vars[name] = var
        box = ttk.Spinbox(parent, from_=low, to=high, textvariable=var, width=6)
        self.inputs[name] = box
        box.grid(row=row, column=column + 1, sticky="w", pady=(pad(w), 0))
        ttk.Label(parent, text=after).grid(row=row, column=column + 2, sticky="w", padx=(pad(w), pad(w)),
                                           pady=(pad(w), 0))
        error = ttk.Label(parent, style="Error.TLabel")
        error.grid(row=row + 1, column=0, columnspan=8, sticky="w")
        error.grid_remove()
        self.error_labels[name] = error
        var.trace_add("write", lambda *_: self._changed(name, var.get()))
        return box

    def _check(self, parent: ttk.Frame, row: int, name: str, text: str, indent: int = 0) -> ttk.Checkbutton:
        w = self.window
        var = tk.BooleanVar(master=self.window)
        self.vars[name] = var
        button = ttk.Checkbutton(parent, text=text, variable=var, command=lambda: self._changed(name, var.get()))
        button.grid(row=row, column=0, columnspan=3, sticky="w", padx=(pad(w, 3) * indent, 0), pady=(px(w, 4), 0))
        return button

    def _build_general(self) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(self.notebook, padding=pad(w, 3))
        frame.columnconfigure(2, weight=1)
        self.interval_box = self._number(frame, 0, "interval_minutes", "Check for new photos every", "minutes")
        self._number(frame, 2, "parallel_downloads", "Download", "files at a time")

        self.autostart_check = self._check(frame, 4, "autostart", "Start Immich Tray Sync when I log in")
        self.autostart_note = ttk.Label(frame, style="Error.TLabel")
        self.autostart_note.grid(row=5, column=0, columnspan=3, sticky="w")
        self.autostart_note.grid_remove()
        self.error_labels["autostart"] = self.autostart_note
        self._check(frame, 6, "notifications", "Show notifications")
        self.success_check = self._check(frame, 7, "notify_on_success", "when a sync brings new photos", indent=1)
        self.error_check = self._check(frame, 8, "notify_on_error", "when something needs my attention", indent=1)

        guard = ttk.Labelframe(frame, text="Safety net for removals")
        guard.grid(row=9, column=0, columnspan=3, sticky="ew", pady=(pad(w, 2), 0))
        guard.columnconfigure(7, weight=1)
        guard_text = ttk.Label(guard, text="For albums set to move removed photos to the trash, wait for my OK "
                               "when one sync would remove more than", wraplength=px(w, 640), justify="left")
        guard_text.grid(row=0, column=0, columnspan=8, sticky="w")
        theme.wrap_with(guard_text, guard, margin=pad(w, 3))
        self._number(guard, 1, "removal_threshold_percent", "", "percent of the album", column=0)
        self._number(guard, 1, "removal_threshold_files", "or", "files", column=3)
        # both numbers share one line; their error labels share the line below
        self.error_labels["removal_threshold_files"].grid_configure(row=3)
        self.error_labels["removal_threshold_files"].grid_remove()  # grid_configure showed it again

        ttk.Label(frame, text="Detail in the log file").grid(row=10, column=0, sticky="w", pady=(pad(w, 2), 0))
        self.log_var = tk.StringVar(master=self.window)
        self.log_box = ttk.Combobox(frame, textvariable=self.log_var, values=[LOG_LABELS[k] for k in LOG_LEVELS],
                                    state="readonly", width=26)
        self.log_box.grid(row=10, column=1, columnspan=2, sticky="w", pady=(pad(w, 2), 0))
        self.log_box.bind("<<ComboboxSelected>>", lambda e: self._changed("log_level", self._log_level()))
        return frame

    def _build_albums(self) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(self.notebook, padding=pad(w, 2))
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(0, weight=1)
        columns = ("album", "connection", "folder", "removed", "pending")
        self.album_tree = ttk.Treeview(frame, columns=columns, show="headings", selectmode="browse", height=8)
        for column, text, width, stretch in (("album", "Album", 150, True), ("connection", "Server", 80, False),
                                             ("folder", "Folder", 190, True),
                                             ("removed", "Removed photos", 140, False),
                                             ("pending", "On Save", 140, True)):
            self.album_tree.heading(column, text=text, anchor="w")
            self.album_tree.column(column, width=px(w, width), minwidth=px(w, 60), stretch=stretch)
        self.album_tree.tag_configure("pending", foreground=theme.ACCENT)
        self.album_tree.tag_configure("held", foreground=theme.WARNING)
        scroll = ttk.Scrollbar(frame, orient="vertical", command=self.album_tree.yview)
        self.album_tree.configure(yscrollcommand=scroll.set)
        self.album_tree.grid(row=0, column=0, sticky="nsew")
        scroll.grid(row=0, column=1, sticky="ns")
        self.album_xscroll = theme.horizontal_scroll(self.album_tree, row=1)
        self.album_tree.bind("<<TreeviewSelect>>", lambda e: self._album_selected())

        policy = ttk.Frame(frame)
        policy.grid(row=2, column=0, columnspan=2, sticky="ew", pady=(pad(w), 0))
        ttk.Label(policy, text="Photos removed from the album on the server:").pack(side="left")
        self.removal_var = tk.StringVar(master=self.window)
        self.removal_box = ttk.Combobox(policy, textvariable=self.removal_var, values=[KEEP, TRASH],
                                        state="disabled", width=34)
        self.removal_box.pack(side="left", padx=pad(w))
        self.removal_box.bind("<<ComboboxSelected>>", lambda e: self._removal_changed())

        buttons = self.album_buttons = ttk.Frame(frame)
        buttons.grid(row=3, column=0, columnspan=2, sticky="ew", pady=(pad(w), 0))
        self.add_album_button = ttk.Button(buttons, text="Add albums…", command=self._add_albums)
        self.folder_button = ttk.Button(buttons, text="Change folder…", command=self._change_folder)
        self.held_button = ttk.Button(buttons, text="Review removals…", command=self._review_held)
        self.remove_album_button = ttk.Button(buttons, text="Stop syncing", command=self._remove_album)
        self.undo_button = ttk.Button(buttons, text="Undo", command=self._undo_album)
        for button in (self.add_album_button, self.folder_button, self.held_button, self.remove_album_button,
                       self.undo_button):
            button.pack(side="left", padx=(0, pad(w)))
        self.album_empty = ttk.Label(frame, text="No albums are synced yet: use Add albums….", style="Muted.TLabel")
        return frame

    def _build_connections(self) -> ttk.Frame:
        w = self.window
        frame = ttk.Frame(self.notebook, padding=pad(w, 2))
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(0, weight=1)
        columns = ("name", "server", "version", "albums", "policy")
        self.connection_tree = ttk.Treeview(frame, columns=columns, show="headings", selectmode="browse", height=6)
        for column, text, width, stretch in (("name", "Name", 120, False), ("server", "Server", 240, True),
                                             ("version", "Immich", 70, False), ("albums", "Albums", 70, False),
                                             ("policy", "New albums", 140, False)):
            self.connection_tree.heading(column, text=text, anchor="w")
            self.connection_tree.column(column, width=px(w, width), minwidth=px(w, 60), stretch=stretch)
        self.connection_tree.grid(row=0, column=0, sticky="nsew")
        self.connection_tree.bind("<<TreeviewSelect>>", lambda e: self._connection_selected())

        policy = ttk.Frame(frame)
        policy.grid(row=1, column=0, sticky="ew", pady=(pad(w), 0))
        ttk.Label(policy, text="Albums created or shared later:").pack(side="left")
        self.policy_var = tk.StringVar(master=self.window)
        self.policy_box = ttk.Combobox(policy, textvariable=self.policy_var, values=list(POLICY_LABELS.values()),
                                       state="disabled", width=22)
        self.policy_box.pack(side="left", padx=pad(w))
        self.policy_box.bind("<<ComboboxSelected>>", lambda e: self._policy_changed())

        buttons = self.connection_buttons = ttk.Frame(frame)
        buttons.grid(row=2, column=0, sticky="ew", pady=(pad(w), 0))
        self.add_connection_button = ttk.Button(buttons, text="Add server…", command=self._add_connection)
        self.edit_connection_button = ttk.Button(buttons, text="Change address or key…", command=self._edit)
        self.remove_connection_button = ttk.Button(buttons, text="Remove", command=self._remove_connection)
        for button in (self.add_connection_button, self.edit_connection_button, self.remove_connection_button):
            button.pack(side="left", padx=(0, pad(w)))
        ttk.Label(frame, text="Changes of address or key and removals are saved at once.",
                  style="Muted.TLabel").grid(row=3, column=0, sticky="w", pady=(pad(w), 0))
        return frame

    def _build_footer(self) -> None:
        w = self.window
        footer = ttk.Frame(w, padding=(pad(w, 2), pad(w, 2)))
        footer.grid(row=1, column=0, sticky="ew")
        footer.columnconfigure(1, weight=1)
        self.busy_bar = ttk.Progressbar(footer, mode="indeterminate", length=px(w, 80))
        self.busy_label = ttk.Label(footer, style="Muted.TLabel")
        self.busy_label.grid(row=0, column=1, sticky="w", padx=pad(w))
        self.save_button = ttk.Button(footer, text="Save", style="Accent.TButton", command=self._save)
        self.save_button.grid(row=0, column=2, padx=(0, pad(w)))
        self.cancel_button = ttk.Button(footer, text="Cancel", command=self._cancel)
        self.cancel_button.grid(row=0, column=3)

    # -- SettingsView --------------------------------------------------------------------

    def show_values(self, values: dict[str, Any], *, autostart_available: bool) -> None:
        self._loading = True
        try:
            level = str(values.get("log_level") or "INFO").upper()
            self.log_var.set(LOG_LABELS.get(level, level))
            for name, value in values.items():
                var = self.vars.get(name)
                if var is not None:
                    var.set(value if not isinstance(var, tk.StringVar) else str(value))
        finally:
            self._loading = False
        self.autostart_check.configure(state="normal" if autostart_available else "disabled")
        self._sync_notify_state()

    def show_field_error(self, name: str, text: str | None) -> None:
        widget = self.inputs.get(name)
        if widget is not None:
            widget.state(["invalid"] if text else ["!invalid"])
        label = self.error_labels.get(name)
        if label is not None:
            label.configure(text=text or "")
            if text:
                label.grid()
            else:
                label.grid_remove()

    def show_albums(self, rows: list[AlbumRow]) -> None:
        self._album_rows = {str(r.album_sync_id): r for r in rows}
        selection = self.album_tree.selection()
        self.album_tree.delete(*self.album_tree.get_children())
        for row in rows:
            removed = row.removal_policy + (f" ({row.held} waiting)" if row.held else "")
            tags = ("pending",) if row.pending else (("held",) if row.held else ())
            self.album_tree.insert("", "end", iid=str(row.album_sync_id), tags=tags,
                                   values=(row.name, row.connection, row.folder, removed, row.pending))
        keep = [iid for iid in selection if self.album_tree.exists(iid)]
        if keep:
            self.album_tree.selection_set(keep)
        elif rows:
            self.album_tree.selection_set(str(rows[0].album_sync_id))
        if rows:
            self.album_empty.place_forget()
        else:
            self.album_empty.place(in_=self.album_tree, relx=0.5, rely=0.5, anchor="center")
        self._album_selected()

    def show_connections(self, rows: list[ConnectionRow]) -> None:
        self._connection_rows = {str(r.connection_id): r for r in rows}
        selection = self.connection_tree.selection()
        self.connection_tree.delete(*self.connection_tree.get_children())
        for row in rows:
            self.connection_tree.insert("", "end", iid=str(row.connection_id), values=(
                row.name, row.server, row.version, row.albums, POLICY_LABELS.get(row.new_album_policy, "?")))
        keep = [iid for iid in selection if self.connection_tree.exists(iid)]
        if keep:
            self.connection_tree.selection_set(keep)
        elif rows:
            self.connection_tree.selection_set(str(rows[0].connection_id))
        self._connection_selected()

    def show_album(self, album_sync_id: int) -> None:
        """The Albums tab with this album selected (the status window's "Review removals…")."""
        self.notebook.select(self.albums_tab)
        iid = str(album_sync_id)
        if self.album_tree.exists(iid):
            self.album_tree.selection_set(iid)
            self.album_tree.see(iid)
            self._album_selected()

    def set_save_enabled(self, enabled: bool) -> None:
        self.save_button.configure(state="normal" if enabled else "disabled")

    def set_cancel_enabled(self, enabled: bool) -> None:
        self.cancel_button.configure(state="normal" if enabled else "disabled")

    def set_busy(self, busy: bool, text: str = "") -> None:
        if busy:
            self.busy_bar.grid(row=0, column=0, sticky="w")
            self.busy_bar.start(15)
            self.window.configure(cursor="watch")
        else:
            self.busy_bar.stop()
            self.busy_bar.grid_remove()
            self.window.configure(cursor="")
        self.busy_label.configure(text=text if busy else "")

    def confirm(self, title: str, question: str) -> bool:
        return bool(messagebox.askyesno(title, question, parent=self.window))

    def ask_yes_no_cancel(self, title: str, question: str) -> bool | None:
        return messagebox.askyesnocancel(title, question, parent=self.window)

    def show_message(self, text: str, *, error: bool) -> None:
        if error:
            messagebox.showerror("Settings", text, parent=self.window)
        else:
            self.busy_label.configure(text=text)

    def close(self) -> None:
        if self.window.winfo_exists():
            self.busy_bar.stop()
            self.window.destroy()
        release(self)

    # -- events --------------------------------------------------------------------------

    def _changed(self, name: str, value: Any) -> None:
        if self._loading or not self.presenter:
            return
        self.presenter.field_changed(name, value)
        if name == "notifications":
            self._sync_notify_state()

    def _log_level(self) -> str:
        label = self.log_var.get()
        return next((level for level, text in LOG_LABELS.items() if text == label), label)

    def _sync_notify_state(self) -> None:
        on = bool(self.vars["notifications"].get())
        for button in (self.success_check, self.error_check):
            button.configure(state="normal" if on else "disabled")

    def _on_return(self, event: tk.Event) -> str:
        if isinstance(event.widget, ttk.Button):
            event.widget.invoke()
        elif str(self.save_button.cget("state")) != "disabled":
            self._save()
        return "break"

    def _save(self) -> None:
        if self.presenter:
            self.presenter.save()

    def _cancel(self) -> None:
        if self.presenter:
            self.presenter.cancel()
        else:
            self.close()

    def _selected_album(self) -> int | None:
        selection = self.album_tree.selection()
        return int(selection[0]) if selection else None

    def _selected_connection(self) -> int | None:
        selection = self.connection_tree.selection()
        return int(selection[0]) if selection else None

    def _album_selected(self) -> None:
        album = self._selected_album()
        row = self._album_rows.get(str(album)) if album is not None else None
        state = "normal" if row else "disabled"
        for button in (self.folder_button, self.remove_album_button):
            button.configure(state=state)
        self.held_button.configure(state="normal" if row and row.held else "disabled")
        self.undo_button.configure(state="normal" if row and row.pending else "disabled")
        self.removal_box.configure(state="readonly" if row else "disabled")
        self.removal_var.set((TRASH if row.removal_policy != "Keep" else KEEP) if row else "")

    def _connection_selected(self) -> None:
        connection = self._selected_connection()
        row = self._connection_rows.get(str(connection)) if connection is not None else None
        for button in (self.edit_connection_button, self.remove_connection_button):
            button.configure(state="normal" if row else "disabled")
        self.policy_box.configure(state="readonly" if row else "disabled")
        self.policy_var.set(POLICY_LABELS.get(row.new_album_policy, "") if row else "")

    def _removal_changed(self) -> None:
        album = self._selected_album()
        if album is not None and self.presenter:
            self.presenter.set_removal_policy(album, self.removal_var.get() == TRASH)

    def _policy_changed(self) -> None:
        connection = self._selected_connection()
        if connection is None or not self.presenter:
            return
        label = self.policy_var.get()
        policy = next((k for k, v in POLICY_LABELS.items() if v == label), None)
        if policy:
            self.presenter.set_new_album_policy(connection, policy)

    def _add_albums(self) -> None:
        if self.presenter:
            connection = self._selected_connection()
            self.presenter.add_albums(connection)

    def _change_folder(self) -> None:
        album = self._selected_album()
        if album is None or not self.presenter:
            return
        row = self._album_rows[str(album)]
        start = Path(row.folder)
        while not start.exists() and start != start.parent:
            start = start.parent
        chosen = filedialog.askdirectory(parent=self.window, initialdir=str(start), mustexist=False,
                                         title=f"New folder for {row.name}")
        if chosen:
            self.presenter.change_album_folder(album, chosen)

    def _review_held(self) -> None:
        album = self._selected_album()
        if album is not None and self.presenter:
            self.presenter.release_held(album)

    def _remove_album(self) -> None:
        album = self._selected_album()
        if album is not None and self.presenter:
            self.presenter.remove_album(album)

    def _undo_album(self) -> None:
        album = self._selected_album()
        if album is not None and self.presenter:
            self.presenter.undo_album_changes(album)

    def _add_connection(self) -> None:
        if self.presenter:
            self.presenter.add_albums(None)

    def _remove_connection(self) -> None:
        connection = self._selected_connection()
        if connection is not None and self.presenter:
            self.presenter.remove_connection(connection)

    def _edit(self) -> None:
        connection = self._selected_connection()
        if connection is not None and self.presenter:
            self.edit_dialog = EditConnectionDialog(self, self.presenter, connection,
                                                    self._connection_rows[str(connection)])


class EditConnectionDialog:
    """A small modal window: a new address and/or key, checked before it is saved."""

    def __init__(self, parent: SettingsWindow, presenter: SettingsPresenter, connection_id: int,
                 row: ConnectionRow) -> None:
        self.presenter = presenter
        self.connection_id = connection_id
        w = self.window = tk.Toplevel(parent.window)
        prepare_window(w, f"Change {row.name}", min_size=(480, 240))
        w.transient(parent.window)
        w.columnconfigure(1, weight=1)
        body = ttk.Frame(w, padding=pad(w, 3))
        body.grid(row=0, column=0, columnspan=2, sticky="nsew")
        body.columnconfigure(1, weight=1)
        ttk.Label(body, text="Server address").grid(row=0, column=0, sticky="w", pady=pad(w))
        self.url_var = tk.StringVar(master=self.window, value=row.server)
        self.url_entry = ttk.Entry(body, textvariable=self.url_var, width=44)
        self.url_entry.grid(row=0, column=1, sticky="ew", padx=(pad(w), 0))
        ttk.Label(body, text="New API key").grid(row=1, column=0, sticky="w", pady=pad(w))
        self.key_var = tk.StringVar(master=self.window)
        self.key_entry = ttk.Entry(body, textvariable=self.key_var, show="•")
        self.key_entry.grid(row=1, column=1, sticky="ew", padx=(pad(w), 0))
        self.show_key_var = tk.BooleanVar(master=self.window, value=False)
        self.show_key = ttk.Checkbutton(body, text="Show", variable=self.show_key_var, command=lambda: (
            self.key_entry.configure(show="" if self.show_key_var.get() else "•")))
        self.show_key.grid(row=1, column=2, sticky="w", padx=(pad(w), 0))
        ttk.Label(body, text="Leave the key empty to keep the saved one.", style="Muted.TLabel").grid(
            row=2, column=1, sticky="w", padx=(pad(w), 0))
        self.result = ttk.Label(body, wraplength=px(w, 440), justify="left")
        self.result.grid(row=3, column=0, columnspan=3, sticky="w", pady=(pad(w), 0))
        buttons = ttk.Frame(w, padding=(pad(w, 3), 0, pad(w, 3), pad(w, 2)))
        buttons.grid(row=1, column=0, columnspan=2, sticky="e")
        self.save_button = ttk.Button(buttons, text="Check and save", style="Accent.TButton", command=self._save)
        self.save_button.pack(side="left", padx=(0, pad(w)))
        ttk.Button(buttons, text="Close", command=w.destroy).pack(side="left")
        w.bind("<Return>", lambda e: (self._save(), "break")[1])
        w.bind("<Escape>", lambda e: w.destroy())
        self.url_entry.focus_set()

    def _save(self) -> None:
        self.save_button.configure(state="disabled")
        self.result.configure(text="Checking…", style="Muted.TLabel")
        self.presenter.edit_connection(self.connection_id, self.url_var.get(), self.key_var.get(), self._done)

    def _done(self, ok: bool, text: str) -> None:
        if not self.window.winfo_exists():
            return
        self.save_button.configure(state="normal")
        self.result.configure(text=text, style="Success.TLabel" if ok else "Error.TLabel")
