"""What a benchmark measures on the client side, in a fresh interpreter (so peak RSS is ours alone).

``python -m bench.child sync ...`` runs the real engine one or more times against an album and
prints one JSON object: seconds per run, files, peak RSS. ``python -m bench.child listing ...``
is the baseline a sync is compared with: one bare paged listing of the album with requests.
The API key comes from an environment variable, never the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any


def _peak_rss_kb() -> int:
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return int(psutil.Process().memory_info().peak_wset // 1024)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak // 1024) if sys.platform == "darwin" else int(peak)


def _rss_kb() -> int:
    import psutil

    return int(psutil.Process().memory_info().rss // 1024)


def run_sync(args: argparse.Namespace) -> dict[str, Any]:
    from tray_sync.sync.engine import EngineOptions, SyncEngine
    from tray_sync.sync.store import Store

    key = os.environ[args.key_env]
    store = Store(Path(args.db))
    connections = store.connections()
    connection = connections[0] if connections else store.save_connection(
        name="bench", server_url=args.api_url.rsplit("/api", 1)[0], api_url=args.api_url, account="bench",
        server_version="")
    have = {a.album_id for a in store.album_syncs(connection.id)}
    for index, album_id in enumerate(args.album):
        if album_id not in have:
            dest = Path(args.dest_root) / f"album-{index:03d}"
            dest.mkdir(parents=True, exist_ok=True)
            store.add_album_sync(connection.id, album_id, f"album {index}", str(dest))
    options = EngineOptions(workers=args.workers, archive_max_file_bytes=args.archive_max)
    engine = SyncEngine(store, lambda _connection: key, options=options)
    runs = []
    rss = []
    for cycle in range(args.repeat):
        started = time.perf_counter()
        report = engine.sync()
        seconds = time.perf_counter() - started
        if not report.ok:
            raise SystemExit(f"sync failed: {report.errors or [a.errors for a in report.albums if a.errors]}")
        if cycle < 3 or cycle == args.repeat - 1:
            runs.append({"seconds": seconds, "downloaded": report.downloaded,
                         "bytes": sum(a.bytes for a in report.albums),
                         "relisted": sum(1 for a in report.albums if a.relisted)})
        if args.rss_every and (cycle + 1) % args.rss_every == 0:
            rss.append([cycle + 1, _rss_kb()])
    store.close()
    return {"runs": runs, "peak_rss_kb": _peak_rss_kb(), "rss_kb": rss}


def run_listing(args: argparse.Namespace) -> dict[str, Any]:
    import requests

    key = os.environ[args.key_env]
    session = requests.Session()
    session.headers["x-api-key"] = key
    started = time.perf_counter()
    count = 0
    if args.mode == "2":
        answer = session.get(f"{args.api_url}/albums/{args.album[0]}", timeout=300)
        answer.raise_for_status()
        count = len(answer.json()["assets"])
    else:
        page: Any = 1
        while page:
            answer = session.post(f"{args.api_url}/search/metadata", timeout=300, json={
                "albumIds": [args.album[0]], "page": int(page), "size": 1000, "withExif": True})
            answer.raise_for_status()
            assets = answer.json()["assets"]
            count += len(assets["items"])
            page = assets["nextPage"]
    return {"seconds": time.perf_counter() - started, "items": count, "peak_rss_kb": _peak_rss_kb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.child")
    parser.add_argument("what", choices=("sync", "listing"))
    parser.add_argument("--api-url", required=True)
    parser.add_argument("--key-env", required=True)
    parser.add_argument("--album", action="append", required=True)
    parser.add_argument("--db")
    parser.add_argument("--dest-root")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--archive-max", type=int, default=1024 * 1024)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--rss-every", type=int, default=0)
    parser.add_argument("--mode", default="3")
    args = parser.parse_args(argv)
    result = run_sync(args) if args.what == "sync" else run_listing(args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
