"""What every command needs, built lazily: the profile, the store, secrets, the engine."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from tray_sync.logs import register_secret
from tray_sync.paths import AppPaths

if TYPE_CHECKING:
    from tray_sync.secrets import SecretStore
    from tray_sync.sync.engine import SyncEngine
    from tray_sync.sync.store import Connection, Store


def _print_out(line: str) -> None:
    print(line, flush=True)


def _print_err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Context:
    paths: AppPaths
    home_arg: str | None = None
    debug: bool = False
    out: Callable[[str], None] = _print_out
    err: Callable[[str], None] = _print_err
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @cached_property
    def store(self) -> Store:
        from tray_sync.sync.store import open_store

        self.paths.ensure()
        store = open_store(self.paths.db_path, warn=self.err)
        self._closers.append(store.close)
        return store

    @cached_property
    def secrets(self) -> SecretStore:
        from tray_sync.secrets import SecretStore

        return SecretStore()

    def key_for(self, connection: Connection) -> str:
        key = self.secrets.get(connection.account)
        register_secret(key)
        return key

    def engine(self) -> SyncEngine:
        from tray_sync.sync.engine import EngineOptions, SyncEngine

        return SyncEngine(self.store, self.key_for, options=EngineOptions.from_settings(self.store.settings()))

    def close(self) -> None:
        while self._closers:
            self._closers.pop()()
