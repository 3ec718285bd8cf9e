"""The demo library: users, keys, albums and real little JPEGs for the built-in server.

Everything is deterministic for a seed: the same pictures, names and capture dates every
time (ids and keys are new for each server). What it holds, and why:

* "Family 2024" (the admin's): two different photos both named ``IMG_0001.jpg`` and a live
  photo (still ``.jpg`` plus hidden motion ``.mov``), so name clashes and live photos show.
* "Holidays 2023" (the admin's).
* "Grandma's Garden" (the admin's), shared with Bob as viewer.
* "Bob's Bikes" (Bob's), shared with the admin as editor, holding one of the admin's photos too.
"""

from __future__ import annotations

import colorsys
import io
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tray_sync.demo.server import DemoServer, DemoUser

DOWNLOAD_PERMISSIONS = ["album.read", "asset.read", "asset.download"]


@dataclass
class DemoLibrary:
    admin: DemoUser
    bob: DemoUser
    admin_key: str
    download_key: str
    album_only_key: str
    bob_key: str
    albums: dict[str, str] = field(default_factory=dict)
    assets: dict[str, list[str]] = field(default_factory=dict)  # album name -> asset ids (stills)


def demo_photo(title: str, caption: str, taken: datetime, rng: random.Random,
               size: tuple[int, int] = (480, 360)) -> bytes:
    """A small real JPEG: a coloured gradient, a few shapes, the album name and the date."""
    from PIL import Image, ImageDraw, ImageFont

    width, height = size
    hue = rng.random()
    top = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.95))
    bottom = tuple(int(c * 255) for c in colorsys.hsv_to_rgb((hue + 0.18) % 1.0, 0.75, 0.45))
    mask = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 6)):
        x, y = rng.randrange(width), rng.randrange(height)
        radius = rng.randint(height // 12, height // 4)
        colour = tuple(int(c * 255) for c in colorsys.hsv_to_rgb(rng.random(), 0.6, 1.0))
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.5:
            draw.ellipse(box, fill=colour, outline=(255, 255, 255), width=3)
        else:
            draw.rounded_rectangle(box, radius=radius // 4, fill=colour, outline=(255, 255, 255), width=3)
    try:
        big = ImageFont.load_default(size=30)
        small = ImageFont.load_default(size=18)
    except TypeError:  # Pillow < 10.1: one bitmap size
        big = small = ImageFont.load_default()
    draw.rectangle((0, height - 70, width, height), fill=(0, 0, 0))
    draw.text((14, height - 64), title, fill=(255, 255, 255), font=big)
    draw.text((14, height - 28), f"{caption}  ·  {taken:%d %B %Y}", fill=(220, 220, 220), font=small)
    exif = Image.Exif()
    exif[0x0132] = taken.strftime("%Y:%m:%d %H:%M:%S")  # DateTime
    exif[0x010F] = "tray-sync demo"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", quality=82, exif=exif.tobytes())
    return out.getvalue()


def build_demo_library(server: DemoServer, photos_per_album: int = 12, seed: int = 0) -> DemoLibrary:
    rng = random.Random(seed)
    admin = server.add_user("Admin", "admin@example.com")
    bob = server.add_user("Bob", "bob@example.com")
    library = DemoLibrary(
        admin=admin,
        bob=bob,
        admin_key=server.add_key(admin, ["all"], name="admin (all)"),
        download_key=server.add_key(admin, list(DOWNLOAD_PERMISSIONS), name="tray-sync"),
        album_only_key=server.add_key(admin, ["album.read"], name="album.read only"),
        bob_key=server.add_key(bob, list(DOWNLOAD_PERMISSIONS), name="Bob's tray-sync"),
    )
    count = max(1, photos_per_album)

    def add_photos(owner: DemoUser, album: str, first_day: datetime, step_days: float, caption: str,
                   number_from: int = 1) -> list[str]:
        album_id = library.albums[album]
        ids = []
        for index in range(count):
            taken = first_day + timedelta(days=step_days * index, hours=rng.randint(8, 19),
                                          minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
            name = f"IMG_{number_from + index:04d}.jpg"
            data = demo_photo(album, f"{caption} {index + 1}", taken, rng)
            ids.append(server.add_asset(owner, name, data=data, file_created_at=taken, albums=[album_id]))
        library.assets.setdefault(album, []).extend(ids)
        return ids

    library.albums["Holidays 2023"] = server.add_album(admin, "Holidays 2023", description="Summer by the sea")
    add_photos(admin, "Holidays 2023", datetime(2023, 7, 14, tzinfo=UTC), 1.5, "Beach day", number_from=2301)

    library.albums["Grandma's Garden"] = server.add_album(admin, "Grandma's Garden", shared_with=[(bob, "viewer")],
                                                         description="Shared with Bob")
    add_photos(admin, "Grandma's Garden", datetime(2022, 4, 2, tzinfo=UTC), 9, "Blossom", number_from=5101)

    library.albums["Bob's Bikes"] = server.add_album(bob, "Bob's Bikes", shared_with=[(admin, "editor")])
    add_photos(bob, "Bob's Bikes", datetime(2021, 9, 5, tzinfo=UTC), 3, "Ride", number_from=7001)
    # the admin (an editor) added one of theirs: an album holding another user's asset
    taken = datetime(2021, 10, 1, 10, 30, tzinfo=UTC)
    server.add_asset(admin, "PXL_20211001.jpg", data=demo_photo("Bob's Bikes", "Admin's photo", taken, rng),
                     file_created_at=taken, albums=[library.albums["Bob's Bikes"]])

    family = server.add_album(admin, "Family 2024", description="Birthdays, walks and one live photo")
    library.albums["Family 2024"] = family
    add_photos(admin, "Family 2024", datetime(2024, 1, 6, tzinfo=UTC), 21, "Family")
    # another camera's IMG_0001.jpg: same name, different picture
    taken = datetime(2024, 8, 17, 15, 4, 5, tzinfo=UTC)
    clash = server.add_asset(admin, "IMG_0001.jpg", data=demo_photo("Family 2024", "Second camera", taken, rng),
                             file_created_at=taken, albums=[family])
    taken = datetime(2024, 12, 24, 18, 30, tzinfo=UTC)
    live = server.add_asset(admin, "IMG_0777.jpg", data=demo_photo("Family 2024", "Live photo", taken, rng),
                            file_created_at=taken, albums=[family], live_video_name="IMG_0777.mov")
    library.assets["Family 2024"].extend([clash, live])
    return library
