"""One look for every window: a light, flat ttk style that scales with the screen's DPI.

Windows and macOS keep their native ttk themes (vista, aqua), which already look right there;
everywhere else the dated default theme is replaced by a careful style built on ``clam``: clam
draws its elements instead of using bitmaps, so it scales cleanly at 2x. Fonts are set in
points (Tk's default X11 fonts are in pixels and would stay tiny on a high-DPI screen), and
every pixel measure in the dialogs goes through :func:`px`.
"""

from __future__ import annotations

import logging
import sys
import tkinter as tk
import tkinter.font as tkfont
from importlib import resources
from tkinter import ttk

log = logging.getLogger(__name__)

ACCENT = "#1f6feb"
ACCENT_ACTIVE = "#1a5fd0"
ACCENT_PRESSED = "#164fae"
BACKGROUND = "#f6f7f9"
SURFACE = "#ffffff"
BORDER = "#c9ced6"
TEXT = "#1d232b"
MUTED = "#5b6573"
ERROR = "#b42318"
SUCCESS = "#1a7f37"
WARNING = "#9a6700"
SELECTION = "#dbe8fd"

def scale_of(widget: tk.Misc) -> float:
    """Pixels per 'logical pixel': 1.0 at 96 DPI, 2.0 at 192 DPI (remembered per Tk root)."""
    root = widget._root()  # type: ignore[attr-defined]
    scale = getattr(root, "_tray_sync_scale", None)
    if scale is None:
        scale = max(1.0, root.winfo_fpixels("1i") / 96.0)
        root._tray_sync_scale = scale
    return float(scale)


def px(widget: tk.Misc, value: float) -> int:
    return round(value * scale_of(widget))


def pad(widget: tk.Misc, step: int = 1) -> int:
    """The standard spacing unit (8 logical pixels) times ``step``."""
    return px(widget, 8 * step)


def apply_theme(root: tk.Tk) -> ttk.Style:
    """Style the whole Tk root once; safe to call again."""
    style = ttk.Style(root)
    if getattr(root, "_tray_sync_themed", False):
        return style
    root._tray_sync_themed = True  # type: ignore[attr-defined]
    dpi = root.winfo_fpixels("1i")
    # Tk's scaling is points->pixels; keep it in step with the real DPI so point fonts scale.
    root.tk.call("tk", "scaling", dpi / 72.0)
    root.__dict__.pop("_tray_sync_scale", None)
    _fonts(root)
    if sys.platform == "win32":
        style.theme_use("vista")
    elif sys.platform == "darwin":
        style.theme_use("aqua")
    else:
        _light_style(root, style)
    _semantic_styles(style)
    return style


def _semantic_styles(style: ttk.Style) -> None:
    """The named text styles the dialogs use, on every platform's theme."""
    style.configure("Title.TLabel", font="TraySyncTitle")
    style.configure("Muted.TLabel", foreground=MUTED)
    style.configure("Error.TLabel", foreground=ERROR)
    style.configure("Success.TLabel", foreground=SUCCESS)
    style.configure("Warning.TLabel", foreground=WARNING)
    style.configure("Heading.TLabel", font="TkHeadingFont")


def _fonts(root: tk.Tk) -> None:
    base = 10 if sys.platform.startswith("linux") else 9
    families = set(tkfont.families(root))
    family = next((f for f in ("Cantarell", "Noto Sans", "Ubuntu", "DejaVu Sans", "Liberation Sans")
                   if f in families), None)
    for name, size, weight in (("TkDefaultFont", base, "normal"), ("TkTextFont", base, "normal"),
                               ("TkMenuFont", base, "normal"), ("TkHeadingFont", base, "bold"),
                               ("TkCaptionFont", base + 3, "bold"), ("TkSmallCaptionFont", base - 1, "normal"),
                               ("TkTooltipFont", base - 1, "normal"), ("TkIconFont", base, "normal")):
        try:
            font = tkfont.nametofont(name, root=root)
        except tk.TclError:
            continue
        options: dict[str, object] = {"size": size, "weight": weight}
        if family and sys.platform.startswith("linux"):
            options["family"] = family
        font.configure(**options)
    fixed = tkfont.nametofont("TkFixedFont", root=root)
    fixed.configure(size=base)
    if "TraySyncTitle" not in tkfont.names(root):
        title = tkfont.nametofont("TkDefaultFont", root=root).copy()
        title.configure(size=base + 4, weight="bold")
        root._tray_sync_title_font = title  # type: ignore[attr-defined]
        root.tk.call("font", "create", "TraySyncTitle", *_font_args(title))


def _font_args(font: tkfont.Font) -> list[object]:
    actual = font.actual()
    return ["-family", actual["family"], "-size", actual["size"], "-weight", actual["weight"]]


def _light_style(root: tk.Tk, style: ttk.Style) -> None:
    style.theme_use("clam")
    s = scale_of(root)

    def p(value: float) -> int:
        return round(value * s)

    root.configure(background=BACKGROUND)
    root.option_add("*TCombobox*Listbox.background", SURFACE)
    root.option_add("*TCombobox*Listbox.selectBackground", SELECTION)
    root.option_add("*TCombobox*Listbox.selectForeground", TEXT)
    root.option_add("*Listbox.font", "TkDefaultFont")

    style.configure(".", background=BACKGROUND, foreground=TEXT, bordercolor=BORDER, darkcolor=BACKGROUND,
                    lightcolor=BACKGROUND, troughcolor="#e4e7ec", focuscolor=ACCENT, selectbackground=SELECTION,
                    selectforeground=TEXT, fieldbackground=SURFACE, font="TkDefaultFont", insertcolor=TEXT)
    style.map(".", foreground=[("disabled", "#9aa3ae")])
    style.configure("TFrame", background=BACKGROUND)
    style.configure("Card.TFrame", background=SURFACE, relief="solid", borderwidth=1)
    style.configure("TLabel", background=BACKGROUND, foreground=TEXT)
    style.configure("TLabelframe", background=BACKGROUND, bordercolor=BORDER, padding=p(10))
    style.configure("TLabelframe.Label", background=BACKGROUND, foreground=TEXT, font="TkHeadingFont")

    button = {"padding": (p(14), p(5)), "relief": "flat", "borderwidth": 1, "anchor": "center"}
    style.configure("TButton", background="#eceff3", bordercolor=BORDER, lightcolor="#eceff3",
                    darkcolor="#eceff3", **button)
    style.map("TButton",
              background=[("disabled", "#f0f1f3"), ("pressed", "#d5dae1"), ("active", "#e2e6eb")],
              lightcolor=[("pressed", "#d5dae1"), ("active", "#e2e6eb")],
              darkcolor=[("pressed", "#d5dae1"), ("active", "#e2e6eb")],
              bordercolor=[("focus", ACCENT)])
    style.configure("Accent.TButton", background=ACCENT, foreground="#ffffff", bordercolor=ACCENT,
                    lightcolor=ACCENT, darkcolor=ACCENT, **button)
    style.map("Accent.TButton",
              background=[("disabled", "#9dbcf2"), ("pressed", ACCENT_PRESSED), ("active", ACCENT_ACTIVE)],
              lightcolor=[("disabled", "#9dbcf2"), ("pressed", ACCENT_PRESSED), ("active", ACCENT_ACTIVE)],
              darkcolor=[("disabled", "#9dbcf2"), ("pressed", ACCENT_PRESSED), ("active", ACCENT_ACTIVE)],
              foreground=[("disabled", "#eef3fc")],
              bordercolor=[("focus", "#0b3d91"), ("disabled", "#9dbcf2")])
    style.configure("Link.TButton", background=BACKGROUND, foreground=ACCENT, bordercolor=BACKGROUND,
                    lightcolor=BACKGROUND, darkcolor=BACKGROUND, padding=(p(2), p(2)), relief="flat")
    style.map("Link.TButton", background=[("active", BACKGROUND)], foreground=[("active", ACCENT_PRESSED)],
              bordercolor=[("focus", BACKGROUND)])

    field = {"padding": (p(6), p(4)), "bordercolor": BORDER, "lightcolor": SURFACE, "darkcolor": SURFACE,
             "fieldbackground": SURFACE, "insertwidth": max(1, p(1))}
    for name in ("TEntry", "TCombobox", "TSpinbox"):
        style.configure(name, **field)
        style.map(name, bordercolor=[("invalid", ERROR), ("focus", ACCENT)],
                  lightcolor=[("focus", SURFACE)], fieldbackground=[("readonly", SURFACE), ("disabled", "#f0f1f3")])
    style.configure("TCombobox", arrowsize=p(14), arrowcolor=MUTED)
    # clam paints a focused read-only combobox's text in the selection colours: white on white here.
    style.map("TCombobox", selectbackground=[("readonly", "focus", SELECTION)],
              selectforeground=[("readonly", "focus", TEXT)],
              foreground=[("disabled", "#9aa3ae"), ("readonly", "focus", TEXT)],
              background=[("active", "#e2e6eb"), ("pressed", "#d5dae1")])
    style.configure("TSpinbox", arrowsize=p(12), arrowcolor=MUTED)

    indicator = {"indicatorsize": p(14), "indicatormargin": (0, 0, p(6), 0), "padding": (p(2), p(3))}
    for name in ("TCheckbutton", "TRadiobutton"):
        style.configure(name, background=BACKGROUND, indicatorbackground=SURFACE, indicatorforeground=SURFACE,
                        upperbordercolor=BORDER, lowerbordercolor=BORDER, **indicator)
        style.map(name,
                  indicatorbackground=[("disabled", "#eef0f3"), ("selected", ACCENT), ("pressed", SELECTION)],
                  indicatorforeground=[("selected", "#ffffff")],
                  upperbordercolor=[("selected", ACCENT), ("focus", ACCENT)],
                  lowerbordercolor=[("selected", ACCENT), ("focus", ACCENT)],
                  background=[("active", BACKGROUND)])

    _indicator_images(root, style, p(16), p(7))

    line = tkfont.nametofont("TkDefaultFont", root=root).metrics("linespace")
    style.configure("Treeview", background=SURFACE, fieldbackground=SURFACE, foreground=TEXT, bordercolor=BORDER,
                    lightcolor=SURFACE, darkcolor=SURFACE, rowheight=line + p(10), borderwidth=1)
    style.map("Treeview", background=[("selected", SELECTION)], foreground=[("selected", TEXT)])
    style.configure("Treeview.Heading", background="#eef0f3", foreground=MUTED, font="TkHeadingFont",
                    relief="flat", bordercolor=BORDER, lightcolor="#eef0f3", darkcolor="#eef0f3",
                    padding=(p(6), p(5)))
    style.map("Treeview.Heading", background=[("active", "#e4e7ec")])

    style.configure("TNotebook", background=BACKGROUND, bordercolor=BORDER, lightcolor=BACKGROUND,
                    darkcolor=BACKGROUND, tabmargins=(p(6), p(6), p(6), 0))
    style.configure("TNotebook.Tab", background="#e9ecf0", foreground=MUTED, bordercolor=BORDER,
                    lightcolor="#e9ecf0", darkcolor="#e9ecf0", padding=(p(14), p(6)))
    style.map("TNotebook.Tab", background=[("selected", BACKGROUND)], foreground=[("selected", TEXT)],
              lightcolor=[("selected", BACKGROUND)], expand=[("selected", (0, p(2), 0, 0))])

    thickness = p(8)
    style.configure("Horizontal.TProgressbar", background=ACCENT, troughcolor="#e4e7ec", bordercolor="#e4e7ec",
                    lightcolor=ACCENT, darkcolor=ACCENT, thickness=thickness)
    style.configure("TScrollbar", background="#dfe3e8", troughcolor=BACKGROUND, bordercolor=BACKGROUND,
                    lightcolor="#dfe3e8", darkcolor="#dfe3e8", arrowcolor=MUTED, arrowsize=p(12), gripcount=0)
    style.map("TScrollbar", background=[("active", "#cfd5dc")])
    style.configure("TSeparator", background=BORDER)


def _indicator_images(root: tk.Tk, style: ttk.Style, size: int, gap: int) -> None:
    """Check boxes and radio buttons drawn at the screen's scale (clam's own are tiny crosses)."""
    try:
        from PIL import Image, ImageDraw, ImageTk
    except ImportError:
        return
    factor = 4  # draw large and shrink: smooth edges without anti-aliasing support in ImageDraw
    big = size * factor

    def make(kind: str, fill: str, outline: str, mark: str | None) -> ImageTk.PhotoImage:
        image = Image.new("RGBA", (big + gap * factor, big), (0, 0, 0, 0))
        draw = ImageDraw.Draw(image)
        box = (factor, factor, big - factor, big - factor)
        width = max(factor, round(big / 14))
        if kind == "check":
            draw.rounded_rectangle(box, radius=big // 5, fill=fill, outline=outline, width=width)
            if mark:
                points = [(big * 0.27, big * 0.52), (big * 0.43, big * 0.68), (big * 0.74, big * 0.34)]
                draw.line(points, fill=mark, width=round(big / 8), joint="curve")
        else:
            draw.ellipse(box, fill=fill, outline=outline, width=width)
            if mark:
                inset = big * 0.32
                draw.ellipse((inset, inset, big - inset, big - inset), fill=mark)
        small = image.resize((size + gap, size), Image.Resampling.LANCZOS)
        return ImageTk.PhotoImage(small, master=root)

    images = {}
    for kind in ("check", "radio"):
        images[kind] = (
            make(kind, SURFACE, "#8c96a3", None),  # off
            make(kind, SURFACE, ACCENT, None),  # off, hovered
            make(kind, ACCENT, ACCENT, "#ffffff"),  # on
            make(kind, "#eef0f3", "#c2c8d0", None),  # off, disabled
            make(kind, "#9dbcf2", "#9dbcf2", "#ffffff"),  # on, disabled
        )
    root._tray_sync_indicators = images  # type: ignore[attr-defined]  # Tk images need a live reference
    for kind, widget in (("check", "Checkbutton"), ("radio", "Radiobutton")):
        off, hover, on, off_disabled, on_disabled = images[kind]
        element = f"TraySync.{kind}.indicator"
        if element not in style.element_names():
            style.element_create(element, "image", off, ("disabled", "selected", on_disabled),
                                 ("disabled", off_disabled), ("selected", on), ("active", hover), sticky="w")
        style.layout(f"T{widget}", [(f"{widget}.padding", {"sticky": "nswe", "children": [
            (element, {"side": "left", "sticky": ""}),
            (f"{widget}.focus", {"side": "left", "sticky": "w", "children": [
                (f"{widget}.label", {"sticky": "nswe"})]})]})])


def set_window_icon(window: tk.Toplevel | tk.Tk) -> None:
    """The app icon in the title bar and task switcher; silently absent if the resource is missing."""
    root = window.winfo_toplevel()._root()  # type: ignore[attr-defined]
    image = getattr(root, "_tray_sync_icon", None)
    if image is None:
        try:
            data = resources.files("tray_sync.resources").joinpath("icon.png").read_bytes()
        except (FileNotFoundError, ModuleNotFoundError, OSError):
            log.debug("No window icon resource")
            return
        try:
            image = _photo_from_png(root, data)
        except (tk.TclError, OSError, ValueError):
            log.debug("Window icon could not be loaded", exc_info=True)
            return
        root._tray_sync_icon = image  # keep a reference: Tk images vanish with their last Python name
    window.iconphoto(False, image)


def _photo_from_png(root: tk.Misc, data: bytes) -> tk.PhotoImage:
    """A PhotoImage of the icon at a sensible size (Tk reads PNG itself; Pillow only to shrink it)."""
    try:
        import io

        from PIL import Image, ImageTk

        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGBA")
            img.thumbnail((128, 128))
            return ImageTk.PhotoImage(img, master=root)  # type: ignore[return-value]
    except ImportError:
        import base64

        return tk.PhotoImage(master=root, data=base64.b64encode(data))


def prepare_window(window: tk.Toplevel, title: str, *, min_size: tuple[int, int]) -> None:
    """Title, icon, background and minimum size (in logical pixels) of a dialog window."""
    window.title(title)
    if not sys.platform.startswith(("win", "darwin")):
        window.configure(background=BACKGROUND)
    set_window_icon(window)
    window.minsize(px(window, min_size[0]), px(window, min_size[1]))


def fit_min_width(window: tk.Toplevel, min_size: tuple[int, int], *rows: tk.Misc) -> None:
    """Raise the minimum width so each row (of buttons) stays whole at the smallest window size.

    Button widths depend on the platform's font, so the minimum is measured, not guessed: a row's
    requested width plus its margins on both sides (assumed symmetric, as every dialog lays out).
    """
    window.update_idletasks()
    needed = px(window, min_size[0])
    for row in rows:
        needed = max(needed, row.winfo_reqwidth() + 2 * _offset_x(row, window))
    window.minsize(needed, px(window, min_size[1]))


def _offset_x(widget: tk.Misc, window: tk.Misc) -> int:
    """``widget``'s distance from the window's left edge; tabs count where the shown tab sits."""
    offset, current = 0, widget
    while current is not window and current.master is not None:
        master = current.master
        if isinstance(master, ttk.Notebook):
            shown = master.select()
            offset += master.nametowidget(shown).winfo_x() if shown else 0
        else:
            offset += current.winfo_x()
        current = master
    return offset


def horizontal_scroll(tree: ttk.Treeview, row: int, column: int = 0) -> ttk.Scrollbar:
    """A horizontal scrollbar under ``tree`` (gridded at ``row``), shown only when the columns do
    not fit: at a window's minimum width the last column stays reachable instead of cut off."""
    bar = ttk.Scrollbar(tree.master, orient="horizontal", command=tree.xview)
    bar.grid(row=row, column=column, sticky="ew")

    def follow(first: str, last: str) -> None:
        if float(first) <= 0.0 and float(last) >= 1.0:
            bar.grid_remove()
        else:
            bar.grid()
        bar.set(first, last)

    tree.configure(xscrollcommand=follow)
    return bar


def wrap_with(label: ttk.Label, container: tk.Misc, margin: int = 0) -> None:
    """Wrap the label's text at the container's width, following the window as it is resized."""
    container.bind("<Configure>", lambda e: label.configure(wraplength=max(px(label, 160), e.width - margin)),
                   add="+")


def release(view: object) -> None:
    """Let a closed window's Python objects go, on the Tk thread, as soon as it is destroyed.

    Variable traces are Tcl commands that hold the view alive from inside the interpreter, and
    the view and its presenter point at each other; unhooked here, reference counting frees them
    at once instead of leaving them to a garbage collection that may run on a worker thread.
    """
    for value in list(vars(view).values()):
        variables = value.values() if isinstance(value, dict) else [value]
        for variable in variables:
            if isinstance(variable, tk.Variable):
                try:
                    for mode, callback in variable.trace_info():
                        variable.trace_remove(mode, callback)
                except tk.TclError:
                    log.debug("variable already gone", exc_info=True)
    if hasattr(view, "presenter"):
        view.presenter = None

