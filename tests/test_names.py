"""Server file names are hostile input: the sanitiser must never let one escape DEST."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tray_sync.sync import fsops
from tray_sync.sync.errors import LocalDiskError
from tray_sync.sync.names import (
    MAX_NAME_BYTES,
    name_key,
    safe_component,
    template_folder,
    with_suffix,
)

hostile = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(["/", "\\", "..", ".", ":", "\x00", "\n", " ", "CON", "nul", "é", "e\u0301", "🙂"]),
    ),
    max_size=300,
).map("".join)


@given(hostile)
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
def test_sanitised_name_is_one_safe_component(raw: str) -> None:
    name = safe_component(raw)
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not any(ord(c) < 32 for c in name)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert not name.endswith((".", " "))
    assert safe_component(name) == name  # idempotent


@given(hostile, st.text(alphabet="0123456789abcdef", min_size=8, max_size=36))
@settings(max_examples=300)
def test_suffixed_name_stays_within_limits(raw: str, tag: str) -> None:
    name = with_suffix(safe_component(raw), tag)
    assert len(name.encode("utf-8")) <= MAX_NAME_BYTES
    assert safe_component(name) == name


@given(hostile)
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_never_escapes_destination(tmp_path_factory: pytest.TempPathFactory, raw: str) -> None:
    root = tmp_path_factory.getbasetemp() / "dest"
    root.mkdir(exist_ok=True)
    target = fsops.inside(root, safe_component(raw))
    assert root.resolve() in target.resolve().parents


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("IMG_0001.jpg", "IMG_0001.jpg"),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("a/b\\c.jpg", "a_b_c.jpg"),
        ("CON.jpg", "_CON.jpg"),
        ("com1", "_com1"),
        ("trailing. . ", "trailing"),
        ("", "unnamed"),
        ("..", "unnamed"),
        ('what?*"<>|.jpg', "what______.jpg"),
        (".~tray-sync-abc.partial", "_.~tray-sync-abc.partial"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert safe_component(raw) == expected


def test_long_name_keeps_extension() -> None:
    name = safe_component("é" * 300 + ".jpeg")
    assert name.endswith(".jpeg") and len(name.encode()) <= 255


def test_name_key_folds_case_and_normalisation() -> None:
    assert name_key("Photo.JPG") == name_key("photo.jpg")
    assert name_key("Cafe\u0301.jpg") == name_key("Café.jpg")


def test_inside_refuses_escape(tmp_path: Path) -> None:
    with pytest.raises(LocalDiskError):
        fsops.inside(tmp_path, "../outside.jpg")
    if os.name == "posix":
        (tmp_path / "link").symlink_to("/tmp")
        with pytest.raises(LocalDiskError):
            fsops.inside(tmp_path, "link/x.jpg")


def test_template_folder() -> None:
    assert template_folder("{year}/{month}", "2024-03-05T10:00:00.000Z") == "2024/03"
    assert template_folder("", "2024-03-05T10:00:00.000Z") == ""
    assert template_folder("{year}/../{month}", "2024-03-05T10:00:00.000Z") == "2024/unnamed/03"
