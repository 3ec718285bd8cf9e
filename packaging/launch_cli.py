"""PyInstaller entry of the bundle's console program (``tray-sync``): the command line."""

import sys

from tray_sync.cli import main

if __name__ == "__main__":
    sys.exit(main())
