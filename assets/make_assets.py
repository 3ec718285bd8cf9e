"""Draw the Immich Tray Sync app icon with Pillow and write every format the app and bundles need.

Run from anywhere: ``python assets/make_assets.py``. Writes, next to this script:

- ``icon-source.png`` (1024 px, the master),
- ``icons/icon-{16,24,32,48,64,128,256,512}.png``,
- ``icon.ico`` (Windows: 16-256 px), ``icon.icns`` (macOS),
- ``../tray_sync/resources/icon.png`` (256 px, loaded at runtime for the tray and window icons),
- ``states/state-<state>.png`` (64 px): the tray's state variants, drawn by :mod:`tray_sync.icons`
  from the runtime icon, and ``previews/*.png`` sheets of every size on a light and a dark panel.

The motif is a photo (a sun over two hills) inside two circling sync arrows, white on a blue-violet
rounded square, so it reads on both light and dark panels. Each size is drawn on its own at 4x and
scaled down, and small sizes drop detail and thicken strokes instead of blurring the big picture:
at 16 px only the arrows and the photo's disc are left.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
RUNTIME_SIZE = 256
SUPERSAMPLE = 4

# Colours: a blue-violet that is neither the panel grey of light nor of dark themes.
TOP_LEFT = (94, 106, 255)
BOTTOM_RIGHT = (40, 62, 196)
WHITE = (255, 255, 255)
SKY = (232, 238, 255)
HILL_BACK = (120, 140, 235)
HILL_FRONT = (52, 78, 210)
SUN = (255, 196, 61)

Point = tuple[float, float]


@dataclass(frozen=True)
class Detail:
    """How much to draw at one size (fractions of the icon's side)."""

    margin: float  # empty border around the rounded square
    radius: float  # corner radius of the square
    ring: float  # radius of the sync arrows' centre line
    stroke: float  # thickness of the arrows
    head: float  # arrowhead length
    disc: float  # radius of the photo disc inside the arrows
    hills: bool  # draw the sun and hills, or a plain disc
    head_width: float  # arrowhead width as a multiple of the stroke


def detail_for(size: int) -> Detail:
    if size <= 16:
        return Detail(
            margin=0.0, radius=0.2, ring=0.315, stroke=0.125, head=0.25, disc=0.1,
            hills=False, head_width=2.7)
    if size <= 24:
        return Detail(
            margin=0.0, radius=0.2, ring=0.31, stroke=0.11, head=0.22, disc=0.12,
            hills=False, head_width=2.6)
    if size <= 48:
        return Detail(
            margin=0.02, radius=0.21, ring=0.3, stroke=0.085, head=0.18, disc=0.165,
            hills=True, head_width=2.5)
    return Detail(
        margin=0.06, radius=0.2, ring=0.285, stroke=0.065, head=0.14, disc=0.185,
        hills=True, head_width=2.3)


def draw_icon(size: int) -> Image.Image:
    """The icon at ``size`` px, drawn at 4x and scaled down (antialiasing without blurring)."""
    big = size * SUPERSAMPLE
    detail = detail_for(size)
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    _draw_square(image, detail)
    _draw_photo(image, detail)
    _draw_arrows(image, detail)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _draw_square(image: Image.Image, detail: Detail) -> None:
    side = image.width
    inset = round(side * detail.margin)
    box = (inset, inset, side - 1 - inset, side - 1 - inset)
    radius = round(side * detail.radius * (1 - 2 * detail.margin))
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(box, radius=radius, fill=255)
    image.paste(_diagonal_gradient(side, TOP_LEFT, BOTTOM_RIGHT), (0, 0), mask)


def _diagonal_gradient(side: int, start: tuple[int, int, int], end: tuple[int, int, int]) -> Image.Image:
    # A 2x2 image scaled up bilinearly is a smooth diagonal blend, with no per-pixel Python loop.
    middle = tuple((a + b) // 2 for a, b in zip(start, end, strict=True))
    seed = Image.new("RGB", (2, 2))
    seed.putdata([start, middle, middle, end])
    return seed.resize((side, side), Image.Resampling.BILINEAR).convert("RGBA")


def _draw_photo(image: Image.Image, detail: Detail) -> None:
    side = image.width
    centre = side / 2
    radius = side * detail.disc
    disc_box = (centre - radius, centre - radius, centre + radius, centre + radius)
    if not detail.hills:
        ImageDraw.Draw(image).ellipse(disc_box, fill=WHITE)
        return
    photo = Image.new("RGBA", image.size, (*SKY, 255))
    draw = ImageDraw.Draw(photo)
    r = radius

    def at(x: float, y: float) -> Point:
        return (centre + x * r, centre + y * r)

    sun = 0.26
    sx, sy = at(0.32, -0.36)
    draw.ellipse((sx - sun * r, sy - sun * r, sx + sun * r, sy + sun * r), fill=SUN)
    draw.polygon([at(-1.2, 1.2), at(-0.15, -0.05), at(0.55, 0.55), at(1.2, 0.05), at(1.2, 1.2)], fill=HILL_BACK)
    draw.polygon([at(-1.2, 1.2), at(-1.2, 0.5), at(-0.45, 0.05), at(0.5, 1.2)], fill=HILL_FRONT)
    draw.polygon([at(-0.2, 1.2), at(0.65, 0.35), at(1.2, 0.75), at(1.2, 1.2)], fill=HILL_FRONT)
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).ellipse(disc_box, fill=255)
    image.paste(photo, (0, 0), mask)


def _draw_arrows(image: Image.Image, detail: Detail) -> None:
    """Two arcs chasing each other clockwise, each ending in an arrowhead."""
    side = image.width
    centre = (side / 2, side / 2)
    ring = side * detail.ring
    half = side * detail.stroke / 2
    head = side * detail.head
    mask = Image.new("L", image.size, 0)
    draw = ImageDraw.Draw(mask)
    # PIL-style angles: degrees clockwise from 3 o'clock (y grows downwards).
    head_span = math.degrees(head / ring)
    for start, end in ((200.0, 345.0), (20.0, 165.0)):
        draw.polygon(list(_annulus_sector(centre, ring - half, ring + half, start, end - head_span * 0.55)), fill=255)
        draw.polygon(list(_arrowhead(centre, ring, end - head_span, head, half * detail.head_width)), fill=255)
    white = Image.new("RGBA", image.size, (*WHITE, 255))
    image.paste(white, (0, 0), mask)


def _annulus_sector(centre: Point, inner: float, outer: float, start: float, end: float) -> Iterable[Point]:
    steps = max(8, int(abs(end - start) / 2))
    angles = [math.radians(start + (end - start) * i / steps) for i in range(steps + 1)]
    for angle in angles:
        yield (centre[0] + outer * math.cos(angle), centre[1] + outer * math.sin(angle))
    for angle in reversed(angles):
        yield (centre[0] + inner * math.cos(angle), centre[1] + inner * math.sin(angle))


def _arrowhead(centre: Point, ring: float, base_angle: float, length: float, half_width: float) -> Iterable[Point]:
    """A triangle whose base sits across the ring at ``base_angle`` and points clockwise along it."""
    angle = math.radians(base_angle)
    radial = (math.cos(angle), math.sin(angle))
    tangent = (-math.sin(angle), math.cos(angle))  # clockwise on screen
    base = (centre[0] + ring * radial[0], centre[1] + ring * radial[1])
    # The tip follows the ring a little so the head curves with the arc instead of flying off it.
    tip_angle = angle + length / ring
    tip = (centre[0] + ring * math.cos(tip_angle), centre[1] + ring * math.sin(tip_angle))
    tip = (tip[0] * 0.6 + (base[0] + tangent[0] * length) * 0.4, tip[1] * 0.6 + (base[1] + tangent[1] * length) * 0.4)
    yield (base[0] + radial[0] * half_width, base[1] + radial[1] * half_width)
    yield tip
    yield (base[0] - radial[0] * half_width, base[1] - radial[1] * half_width)


def on_panel(icon: Image.Image, colour: tuple[int, int, int], pad: int = 8) -> Image.Image:
    """The icon composited on a panel colour, for previews."""
    panel = Image.new("RGBA", (icon.width + 2 * pad, icon.height + 2 * pad), (*colour, 255))
    panel.alpha_composite(icon, (pad, pad))
    return panel


def make_preview(icons: dict[int, Image.Image]) -> Image.Image:
    """Every small size on a light and on a dark panel, for eyeballing the result."""
    sizes = [s for s in (16, 24, 32, 48, 64, 128) if s in icons]
    width = sum(s + 16 for s in sizes) + 16
    height = 2 * (max(sizes) + 16) + 16
    sheet = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    for row, colour in enumerate(((240, 240, 240), (40, 40, 44))):
        band = Image.new("RGBA", (width, height // 2), (*colour, 255))
        sheet.paste(band, (0, row * height // 2))
        x = 16
        for size in sizes:
            y = row * height // 2 + (height // 2 - size) // 2
            sheet.alpha_composite(icons[size], (x, y))
            x += size + 16
    return sheet


def state_icons(out_dir: Path) -> list[Path]:
    """The tray's state variants (tray_sync.icons draws them from the runtime icon) and a preview sheet."""
    sys.path.insert(0, str(REPO))
    try:
        from tray_sync.appstate import TrayState
        from tray_sync.icons import state_icon
        from tray_sync.tray_presenter import PROGRESS_STEPS
    except ImportError as exc:  # an older checkout without the tray
        print(f"state icons skipped: {exc}", file=sys.stderr)
        return []
    finally:
        sys.path.pop(0)
    folder = out_dir / "states"
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    icons: dict[str, dict[int, Image.Image]] = {}
    for state in TrayState:
        step = PROGRESS_STEPS * 2 // 3 if state is TrayState.SYNCING else None
        icons[state.value] = {size: state_icon(state, step, size) for size in (16, 24, 32, 64)}
        path = folder / f"state-{state.value}.png"
        icons[state.value][64].save(path, optimize=True)
        written.append(path)
    sheet_path = out_dir / "previews" / "states-on-panels.png"
    sheet_path.parent.mkdir(parents=True, exist_ok=True)
    _states_sheet(icons).save(sheet_path, optimize=True)
    written.append(sheet_path)
    return written


def _states_sheet(icons: dict[str, dict[int, Image.Image]]) -> Image.Image:
    """One column per state; rows 16, 24, 32 and 64 px, on a light then a dark panel."""
    sizes = (16, 24, 32, 64)
    cell = 64 + 16
    band = sum(s + 10 for s in sizes) + 10
    sheet = Image.new("RGBA", (cell * len(icons) + 10, 2 * band), (0, 0, 0, 255))
    for row, colour in enumerate(((240, 240, 240), (40, 40, 44))):
        sheet.paste(Image.new("RGBA", (sheet.width, band), (*colour, 255)), (0, row * band))
        for column, by_size in enumerate(icons.values()):
            y = row * band + 10
            for size in sizes:
                sheet.alpha_composite(by_size[size], (10 + column * cell + (64 - size) // 2, y))
                y += size + 10
    return sheet


def make_all(out_dir: Path = HERE, runtime_icon: Path | None = None) -> list[Path]:
    runtime_icon = runtime_icon or REPO / "tray_sync" / "resources" / "icon.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    source = draw_icon(1024)
    source.save(out_dir / "icon-source.png", optimize=True)
    written.append(out_dir / "icon-source.png")

    icons = {size: draw_icon(size) for size in sorted(set(PNG_SIZES) | set(ICO_SIZES))}
    (out_dir / "icons").mkdir(parents=True, exist_ok=True)
    for size in PNG_SIZES:
        path = out_dir / "icons" / f"icon-{size}.png"
        icons[size].save(path, optimize=True)
        written.append(path)

    # Pillow's ICO writer scales one image down; give it the largest and let it pick each hand-drawn
    # size through append_images, so 16 px is the simplified drawing, not a shrunken 256.
    ico = out_dir / "icon.ico"
    icons[256].save(ico, format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                    append_images=[icons[s] for s in ICO_SIZES if s != 256])
    written.append(ico)

    icns = out_dir / "icon.icns"
    source.save(icns, format="ICNS", append_images=[icons[s] for s in (16, 32, 64, 128, 256, 512)])
    written.append(icns)

    runtime_icon.parent.mkdir(parents=True, exist_ok=True)
    icons[RUNTIME_SIZE].save(runtime_icon, optimize=True)
    written.append(runtime_icon)

    previews = out_dir / "previews"
    previews.mkdir(exist_ok=True)
    make_preview(icons).save(previews / "sizes-on-panels.png", optimize=True)
    written.append(previews / "sizes-on-panels.png")
    written.extend(state_icons(out_dir))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where to write the assets (default: assets/)")
    parser.add_argument("--runtime-icon", type=Path, default=None, help="where the 256 px package icon goes")
    args = parser.parse_args(argv)
    for path in make_all(args.out, args.runtime_icon):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
