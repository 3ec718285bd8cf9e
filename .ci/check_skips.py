"""Fail CI when a test was skipped: every test here can run on CI's machine.

Prints how many tests ran, and every skip with its reason. Platform-only tests (macOS,
Windows) are the one allowed reason, and they must say so with the prefix "platform:".
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

ALLOWED_PREFIX = "platform:"


def main(paths: list[str]) -> int:
    total = failures = 0
    unexpected: list[str] = []
    allowed: list[str] = []
    for path in paths:
        root = ET.parse(path).getroot()
        for case in root.iter("testcase"):
            total += 1
            name = f"{case.get('classname')}::{case.get('name')}"
            for skipped in case.findall("skipped"):
                reason = (skipped.get("message") or "").strip()
                (allowed if reason.startswith(ALLOWED_PREFIX) else unexpected).append(f"{name}: {reason}")
            failures += len(case.findall("failure")) + len(case.findall("error"))
    print(f"{total} tests, {failures} failed, {len(allowed) + len(unexpected)} skipped")
    for line in allowed:
        print(f"  allowed skip  {line}")
    for line in unexpected:
        print(f"  UNEXPECTED skip  {line}")
    if unexpected:
        print("CI can run every test; a skip here means a missing install step.")
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
