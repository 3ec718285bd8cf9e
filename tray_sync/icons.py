"""Tray icons for every state, drawn with Pillow from the one app icon.

Each state keeps the app's picture recognisable and adds a round badge in the lower right
corner: a distinct colour *and* a distinct symbol, so the states stay apart at 16 px, for
colour-blind users, and on dark and light panels (the badge has a white rim and a dark edge,
so one of the two always contrasts with the panel). Inactive states (paused, offline, not set
up) also grey out the picture itself. Syncing shows its progress as an arc that fills up.

Drawing happens at 4x and is scaled down, which is Pillow's way of antialiasing shapes.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources

from PIL import Image, ImageDraw, ImageEnhance

from tray_sync.appstate import TrayState
from tray_sync.tray_presenter import PROGRESS_STEPS

log = logging.getLogger(__name__)

ICON_RESOURCE = ("resources", "icon.png")
DEFAULT_SIZE = 64
_SUPERSAMPLE = 4

# Fill colours chosen to differ in hue and lightness (readable without colour vision too).
BADGE_COLOURS: dict[TrayState, tuple[int, int, int]] = {
    TrayState.SYNCED: (30, 150, 70),  # green, check mark
    TrayState.SYNCING: (25, 110, 220),  # blue, progress arc
    TrayState.PAUSED: (230, 160, 20),  # amber, two bars
    TrayState.OFFLINE: (110, 110, 120),  # grey, a crossed-out link
    TrayState.ERROR: (210, 35, 35),  # red, exclamation mark
    TrayState.NOT_SET_UP: (120, 70, 190),  # purple, three dots
}
_DIMMED = {TrayState.PAUSED, TrayState.OFFLINE, TrayState.NOT_SET_UP}
_WHITE = (255, 255, 255, 255)
_EDGE = (20, 20, 20, 255)


@lru_cache(maxsize=1)
def base_icon() -> Image.Image:
    """The app icon (package data ``tray_sync/resources/icon.png``), or a drawn stand-in if missing."""
    try:
        source = resources.files("tray_sync").joinpath(*ICON_RESOURCE)
        with resources.as_file(source) as path, Image.open(path) as image:
            return image.convert("RGBA")
    except (FileNotFoundError, OSError) as exc:
        log.warning("App icon not found (%s); drawing a plain one", exc)
        return _fallback_icon()


def _fallback_icon(size: int = 256) -> Image.Image:
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((8, 8, size - 8, size - 8), radius=size // 5, fill=(60, 90, 200, 255))
    draw.polygon([(40, 200), (110, 110), (150, 160), (180, 125), (216, 200)], fill=(255, 255, 255, 255))
    draw.ellipse((150, 52, 196, 98), fill=(255, 210, 80, 255))
    return image


def _dim(image: Image.Image) -> Image.Image:
    grey = ImageEnhance.Color(image).enhance(0.0)
    grey = ImageEnhance.Brightness(grey).enhance(0.9)
    alpha = grey.getchannel("A").point(lambda a: a * 70 // 100)
    grey.putalpha(alpha)
    return grey


def _badge(size: int, state: TrayState, step: int | None) -> Image.Image:
    """The state badge, drawn on a transparent ``size`` square at 4x then scaled down."""
    big = size * _SUPERSAMPLE
    layer = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    diameter = big * (0.62 if size >= 32 else 0.74)  # tiny icons: the badge is what must read
    x0, y0 = big - diameter, big - diameter
    box = (x0, y0, big - 1, big - 1)
    edge = max(_SUPERSAMPLE, big * 0.025)
    rim = max(_SUPERSAMPLE * 1.2, big * 0.05)
    draw.ellipse(box, fill=_EDGE)
    draw.ellipse(_inset(box, edge), fill=_WHITE)
    inner = _inset(box, edge + rim)
    draw.ellipse(inner, fill=(*BADGE_COLOURS[state], 255))
    cx, cy = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    r = (inner[2] - inner[0]) / 2
    stroke = max(2 * _SUPERSAMPLE, r * 0.28)

    if state is TrayState.SYNCED:
        draw.line([(cx - r * 0.5, cy + r * 0.02), (cx - r * 0.12, cy + r * 0.42), (cx + r * 0.52, cy - r * 0.38)],
                  fill=_WHITE, width=int(stroke), joint="curve")
    elif state is TrayState.SYNCING:
        ring = _inset(inner, r * 0.18)
        width = int(stroke * 1.1)
        draw.ellipse(ring, outline=(10, 45, 110, 255), width=width)  # the empty track, darker than the fill
        if step is None:  # total unknown yet: the classic three-quarter "sync" arc
            draw.arc(ring, start=-30, end=240, fill=_WHITE, width=width)
        elif step > 0:
            draw.arc(ring, start=-90, end=-90 + 360 * step / PROGRESS_STEPS, fill=_WHITE, width=width)
    elif state is TrayState.PAUSED:
        bar_w, bar_h = r * 0.28, r * 1.0
        for dx in (-r * 0.3, r * 0.3):
            draw.rectangle((cx + dx - bar_w / 2, cy - bar_h / 2, cx + dx + bar_w / 2, cy + bar_h / 2), fill=_WHITE)
    elif state is TrayState.OFFLINE:
        # a plug-less link: a short horizontal bar crossed by a diagonal
        draw.line([(cx - r * 0.55, cy), (cx + r * 0.55, cy)], fill=_WHITE, width=int(stroke))
        draw.line([(cx - r * 0.45, cy + r * 0.55), (cx + r * 0.45, cy - r * 0.55)], fill=_WHITE,
                  width=int(stroke * 0.7))
    elif state is TrayState.ERROR:
        draw.line([(cx, cy - r * 0.6), (cx, cy + r * 0.12)], fill=_WHITE, width=int(stroke))
        dot = stroke * 0.6
        draw.ellipse((cx - dot, cy + r * 0.38 - dot, cx + dot, cy + r * 0.38 + dot), fill=_WHITE)
    elif state is TrayState.NOT_SET_UP:
        dot = max(_SUPERSAMPLE, r * 0.16)
        for dx in (-r * 0.5, 0.0, r * 0.5):
            draw.ellipse((cx + dx - dot, cy - dot, cx + dx + dot, cy + dot), fill=_WHITE)
    return layer.resize((size, size), Image.Resampling.LANCZOS)


def _inset(box: tuple[float, float, float, float], by: float) -> tuple[float, float, float, float]:
    return (box[0] + by, box[1] + by, box[2] - by, box[3] - by)


@lru_cache(maxsize=64)
def state_icon(state: TrayState, step: int | None = None, size: int = DEFAULT_SIZE) -> Image.Image:
    """The tray picture for ``state`` (``step`` of PROGRESS_STEPS while syncing). Cached; do not mutate."""
    base = base_icon().resize((size, size), Image.Resampling.LANCZOS)
    if state in _DIMMED:
        base = _dim(base)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.alpha_composite(base)
    canvas.alpha_composite(_badge(size, state, step))
    return canvas

