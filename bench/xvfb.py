"""A private Xvfb for the benchmarks and the GUI tests alike."""

from __future__ import annotations

import os
import select
import subprocess
from typing import Any


def start_xvfb(*args: str) -> tuple[subprocess.Popen[bytes], str]:
    """An Xvfb on a display number it picks itself (-displayfd); returns it and ``:N``.

    Picking a free number first races when two runs start at once on one machine: both took
    the same number, the second Xvfb quit, and its clients ran on the other run's display and
    died when that run ended it.
    """
    read, write = os.pipe()
    try:
        process = subprocess.Popen(["Xvfb", "-displayfd", str(write), *args], pass_fds=(write,),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        os.close(write)
    with os.fdopen(read, "rb") as pipe:
        number = pipe.readline().strip() if select.select([pipe], [], [], 15)[0] else b""
    if not number.isdigit():
        stop(process)
        raise RuntimeError("Xvfb did not start")
    return process, f":{int(number)}"


def stop(process: subprocess.Popen[Any], wait: float = 5) -> None:
    """Terminate, then kill if it does not end within ``wait`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
