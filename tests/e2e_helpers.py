"""Drive the real command line, in-process or as a subprocess, against the built-in server."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import requests

from tray_sync.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def cli(home: Path, *args: str, stdin: str | None = None) -> Result:
    """Run `tray-sync --home HOME ARGS` in this process, capturing its output."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--home", str(home), *args])
    finally:
        sys.stdin = old_stdin
    return Result(code, out.getvalue(), err.getvalue())


def cli_process(home: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tray_sync", "--home", str(home), *args],
        input=stdin, capture_output=True, text=True, env=full_env, timeout=timeout,
    )


def connect(home: Path, server, key: str, name: str = "home") -> Result:  # type: ignore[no-untyped-def]
    result = cli(home, "connect", server.url, "--name", name, "--api-key-stdin", stdin=key + "\n")
    assert result.code == 0, result.err
    return result


def original_bytes(server, key: str, asset_id: str) -> bytes:  # type: ignore[no-untyped-def]
    response = requests.get(f"{server.api_url}/assets/{asset_id}/original", headers={"x-api-key": key},
                            timeout=30)
    response.raise_for_status()
    return response.content


def sha1_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha1(data).digest()).decode()


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` by relative path, ignoring the app's trash folder."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".tray-sync-trash" not in path.parts:
            found[path.relative_to(folder).as_posix()] = path.read_bytes()
    return found


def album_listing(server, key: str, album_id: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The album's assets as the server lists them (3.x search / 2.x inline), for comparison."""
    version = requests.get(f"{server.api_url}/server/version", timeout=10).json()
    headers = {"x-api-key": key}
    if version["major"] >= 3:
        items: list[dict[str, object]] = []
        page: object = 1
        while page:
            data = requests.post(f"{server.api_url}/search/metadata", headers=headers, timeout=30,
                                 json={"albumIds": [album_id], "page": int(page), "size": 1000,
                                       "withExif": True}).json()
            items.extend(data["assets"]["items"])
            page = data["assets"]["nextPage"]
        return items
    return requests.get(f"{server.api_url}/albums/{album_id}", headers=headers, timeout=30).json()["assets"]


def no_partials(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith(".~tray-sync-")]
