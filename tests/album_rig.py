"""One album of small files on the built-in server, with a store and a folder: the in-process rig of
the engine tests that look at single files (archives, batched publishing)."""

from __future__ import annotations

import random
from pathlib import Path

from tests.e2e_helpers import no_partials, sha1_b64
from tray_sync.demo.server import DemoServer
from tray_sync.sync.client import RetryPolicy
from tray_sync.sync.engine import EngineOptions, SyncEngine
from tray_sync.sync.store import Store


class AlbumRig:
    """``count`` generated files of ``size`` bytes (or one file per name in ``names``) in an album
    "Small", synced into ``tmp_path/dest/Small``; ``engine_defaults`` are the EngineOptions every
    :meth:`engine` starts from."""

    def __init__(self, server: DemoServer, tmp_path: Path, *, count: int = 24, size: int = 3000,
                 names: list[str] | None = None, seed: int = 7, **engine_defaults: object) -> None:
        self.server = server
        user = server.add_user("admin", "admin@example.com")
        self.key = server.add_key(user, ["album.read", "asset.read", "asset.download"])
        self.album_id = server.add_album(user, "Small")
        if names is None:
            self.ids = server.add_assets_bulk(user, count, size, self.album_id, prefix="IMG_", seed=seed)
        else:
            rng = random.Random(11)
            self.ids = [server.add_asset(user, name, rng.randbytes(size - 50) + bytes([i]) * 50,
                                         albums=[self.album_id]) for i, name in enumerate(names)]
        self.dest = tmp_path / "dest" / "Small"
        self.dest.mkdir(parents=True)
        self.store = Store(tmp_path / "state.sqlite3")
        connection = self.store.save_connection(name="home", server_url=server.url, api_url=server.api_url,
                                                account="home", server_version="")
        self.album = self.store.add_album_sync(connection.id, self.album_id, "Small", str(self.dest))
        self._engine_defaults = {"retry": RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02),
                                 **engine_defaults}

    def engine(self, **options: object) -> SyncEngine:
        settings = {**self._engine_defaults, **options}
        return SyncEngine(self.store, lambda _connection: self.key, options=EngineOptions(**settings))  # type: ignore[arg-type]

    def bytes_of(self, asset_id: str) -> bytes:
        return self.server.asset_bytes(asset_id)

    def requests(self, suffix: str) -> int:
        return sum(1 for r in self.server.requests if r.path.endswith(suffix))

    def originals(self) -> list[str]:
        """Asset ids fetched one request each, in order."""
        return [r.path.split("/")[-2] for r in self.server.requests if r.path.endswith("/original")]

    def assert_complete(self) -> None:
        """Every asset recorded, under its name, with the server's bytes and the size and time the
        disk keeps; no partial file; nothing else in the folder."""
        records = self.store.synced_assets(self.album.id)
        assert set(records) == set(self.ids)
        for asset_id, record in records.items():
            path = self.dest / record.local_path
            data = path.read_bytes()
            assert data == self.bytes_of(asset_id), record.local_path
            assert record.checksum == sha1_b64(data)
            st = path.stat()
            assert (record.file_size, record.mtime_ns) == (st.st_size, st.st_mtime_ns), record.local_path
        assert no_partials(self.dest)
        on_disk = sorted(p.relative_to(self.dest).as_posix() for p in self.dest.rglob("*") if p.is_file())
        assert on_disk == sorted(r.local_path for r in records.values())
