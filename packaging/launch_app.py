"""PyInstaller entry of the bundle's windowed program: the tray app (no console window on Windows)."""

import os
import sys

from tray_sync.cli import main

if __name__ == "__main__":
    # A windowed Windows program has no console: print() to None would crash the error path.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - lives as long as the app
    # Finder on old macOS passes a process serial number (-psn_0_12345) that is not ours to parse.
    sys.exit(main([arg for arg in sys.argv[1:] if not arg.startswith("-psn_")]))
