"""The built-in server in a process of its own, driven over stdin/stdout (one JSON object a line).

Its own process so that server and client never share an interpreter lock: on a 2-core
machine that would measure Python's GIL, not the sync. Started by :mod:`bench.run`.

Requests: ``{"op": "album", "name": ..., "count": ..., "size": ...}`` -> ``{"id": ...}``;
``{"op": "add_one", "album": id}``; ``{"op": "requests"}`` -> the (method, path) pairs seen
since the last call; ``{"op": "stop"}``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from tray_sync.demo.server import DemoServer

PERMISSIONS = ["album.read", "asset.read", "asset.download"]


def main() -> int:
    mode, storage = sys.argv[1], Path(sys.argv[2])
    server = DemoServer(mode=mode, storage_dir=storage).start()
    owner = server.add_user("bench", "bench@example.com")
    key = server.add_key(owner, PERMISSIONS)
    seed = 0

    def reply(data: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(data) + "\n")
        sys.stdout.flush()

    reply({"url": server.url, "api_url": server.api_url, "key": key})
    try:
        for line in sys.stdin:
            command = json.loads(line)
            op = command["op"]
            if op == "album":
                seed += 1
                album_id = server.add_album(owner, command["name"])
                if command["count"]:
                    server.add_assets_bulk(owner, command["count"], command["size"], album_id,
                                           prefix=command.get("prefix", "IMG_"), seed=seed)
                reply({"id": album_id})
            elif op == "add_one":
                seed += 1
                server.add_assets_bulk(owner, 1, command.get("size", 1000), command["album"], prefix="NEW_", seed=seed)
                reply({})
            elif op == "requests":
                seen = [(r.method, r.path) for r in server.requests]
                server.clear_requests()
                counts = Counter(_kind(path) for _, path in seen)
                reply({"total": len(seen), "kinds": dict(counts)})
            elif op == "stop":
                reply({})
                break
    finally:
        server.stop()
    return 0


def _kind(path: str) -> str:
    """``/api/assets/<id>/original`` -> ``original``; ``/api/albums/<id>`` -> ``album``."""
    parts = path.strip("/").split("/")
    if parts[-1] == "original":
        return "original"
    if parts[:2] == ["api", "albums"] and len(parts) == 3:
        return "album"
    return "/".join(parts[1:])


if __name__ == "__main__":
    raise SystemExit(main())
