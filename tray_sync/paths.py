"""Where settings, the database, logs and the instance lock live.

``--home DIR`` (or ``TRAY_SYNC_HOME``) puts everything under one folder, which is how tests,
the demo and portable installs keep a profile of their own; otherwise the platform's user
directories are used (platformdirs). The folders are private to the user (0700 on POSIX):
they hold the server address and the sync history.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from tray_sync import APP_ID

HOME_ENV = "TRAY_SYNC_HOME"


@dataclass(frozen=True)
class AppPaths:
    config_dir: Path
    data_dir: Path
    log_dir: Path
    runtime_dir: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> AppPaths:
        chosen = home if home is not None else os.environ.get(HOME_ENV) or None
        if chosen:
            root = Path(chosen).expanduser().resolve()
            return cls(root, root, root / "logs", root)
        dirs = platformdirs.PlatformDirs(APP_ID, appauthor=False)
        return cls(
            Path(dirs.user_config_dir),
            Path(dirs.user_data_dir),
            Path(dirs.user_log_dir),
            Path(dirs.user_data_dir),
        )

    @property
    def db_path(self) -> Path:
        return self.data_dir / "tray-sync.sqlite3"

    @property
    def log_file(self) -> Path:
        return self.log_dir / "tray-sync.log"

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / "tray-sync.lock"

    def ensure(self) -> AppPaths:
        for folder in {self.config_dir, self.data_dir, self.log_dir, self.runtime_dir}:
            folder.mkdir(parents=True, exist_ok=True)
            if os.name == "posix":
                os.chmod(folder, 0o700)
        return self
