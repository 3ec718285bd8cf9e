"""The built-in Immich-compatible server and its demo library (for `tray-sync demo` and tests)."""
