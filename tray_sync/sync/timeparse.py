"""Timestamps in every form Immich servers send.

3.x and 2.x album fields: ``2026-11-23T20:45:36.123Z``; 2.x inline assets: PostgreSQL's
``2026-11-23T21:30:46.991917+00:00`` with trailing zeros dropped (so five-digit fractions
such as ``.15687``) or no fraction at all.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: str) -> datetime:
    """Parse an Immich timestamp into an aware UTC datetime. Raises ValueError."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat in 3.11 wants 3 or 6 fraction digits; servers send 1 to 9.
    match = _FRACTION.search(text)
    if match:
        digits = (match.group(1) + "000000")[:6]
        text = text[: match.start()] + "." + digits + text[match.end() :]
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # year 1 at +14:00, year 9999 at -14:00: no such UTC moment
        raise ValueError(f"timestamp out of range: {value!r}") from None


def to_epoch_ns(value: str | None) -> int | None:
    if not value:
        return None
    try:
        moment = parse_timestamp(value)
    except ValueError:
        return None
    epoch_ns = int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
    # File times are 64-bit nanoseconds (years 1678 to 2262): a date outside is no capture date.
    return epoch_ns if -(1 << 63) < epoch_ns < (1 << 63) else None
