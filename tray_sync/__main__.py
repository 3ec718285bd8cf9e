from __future__ import annotations

import sys

from tray_sync.cli import main

sys.exit(main())
