"""Images shipped inside the package (the app icon); `assets/make_assets.py` generates them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

ICON_NAME = "icon.png"


def icon_path() -> Path:
    """The 256 px app icon, as a real file (also inside a zip or a frozen bundle)."""
    return Path(str(resources.files(__name__).joinpath(ICON_NAME)))


def load_icon():  # type: ignore[no-untyped-def]
    """The app icon as an RGBA Pillow image."""
    from PIL import Image

    with resources.files(__name__).joinpath(ICON_NAME).open("rb") as handle:
        image = Image.open(handle)
        image.load()
    return image.convert("RGBA")
