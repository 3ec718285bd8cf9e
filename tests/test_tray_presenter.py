"""The tray's presenter and icons, without a display: snapshot -> icon state, tooltip, menu."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image, ImageChops, ImageStat

from tray_sync.appstate import AppSnapshot, OfferedAlbum, TrayState
from tray_sync.icons import BADGE_COLOURS, state_icon
from tray_sync.sync.progress import Phase, Progress
from tray_sync.sync.status import AlbumStatus
from tray_sync.tray_presenter import (
    PROGRESS_STEPS,
    TOOLTIP_LIMIT,
    Action,
    MenuEntry,
    build_menu,
    pause_until,
    present,
    progress_step,
    tooltip,
)

NOW = datetime(2026, 3, 14, 10, 50, tzinfo=UTC)


def album(name: str, path: str, sync_id: int = 1) -> AlbumStatus:
    return AlbumStatus(
        album_sync_id=sync_id, album_id=f"id-{sync_id}", album_name=name, connection="home", path=path,
        last_sync_at=None, last_attempt_at=None, state="ok", last_error=None, files=3, bytes=100,
        changed_locally=(), held_removals=0, mirror_removals=False,
    )


def local_hhmm(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M")


def labels(menu: tuple[MenuEntry, ...]) -> list[str]:
    return [entry.label for entry in menu]


def find(menu: tuple[MenuEntry, ...], label: str) -> MenuEntry:
    for entry in menu:
        if entry.label == label:
            return entry
    raise AssertionError(f"{label!r} not in {labels(menu)}")


DOWNLOADING = Progress(Phase.DOWNLOADING, "Family 2024", files_done=12, files_total=340,
                       bytes_done=300_000_000, bytes_total=1_500_000_000)


# -- tooltip ----------------------------------------------------------------------------


def test_tooltip_syncing_shows_counts_and_bytes_left() -> None:
    text = tooltip(AppSnapshot(TrayState.SYNCING, progress=DOWNLOADING), NOW)
    assert text == "Immich Sync: syncing 12/340, 1.2 GB left"


def test_tooltip_synced_shows_last_sync_in_local_time() -> None:
    last = NOW - timedelta(minutes=8)
    text = tooltip(AppSnapshot(TrayState.SYNCED, last_success_at=last), NOW)
    assert text == f"Immich Sync: up to date, last sync {local_hhmm(last)}"


def test_tooltip_for_every_state_names_the_state() -> None:
    expected = {
        TrayState.NOT_SET_UP: "not set up",
        TrayState.SYNCING: "syncing",
        TrayState.PAUSED: "paused",
        TrayState.OFFLINE: "offline",
        TrayState.ERROR: "needs attention",
        TrayState.SYNCED: "up to date",
    }
    for state, words in expected.items():
        assert words in tooltip(AppSnapshot(state, last_success_at=NOW), NOW), state


def test_tooltip_before_the_first_sync_does_not_claim_up_to_date() -> None:
    soon = NOW + timedelta(seconds=5)
    assert tooltip(AppSnapshot(TrayState.SYNCED, next_due_at=soon), NOW) == (
        f"Immich Sync: not synced yet, first sync at {local_hhmm(soon)}")
    assert tooltip(AppSnapshot(TrayState.SYNCED), NOW) == "Immich Sync: not synced yet, first sync starting"


def test_tooltip_paused_until_and_offline_retry_time() -> None:
    until = NOW + timedelta(hours=1)
    assert tooltip(AppSnapshot(TrayState.PAUSED, paused_until=until), NOW).endswith(f"paused until {local_hhmm(until)}")
    retry = NOW + timedelta(minutes=2)
    offline = tooltip(AppSnapshot(TrayState.OFFLINE, next_due_at=retry), NOW)
    assert "offline" in offline and f"retrying at {local_hhmm(retry)}" in offline


def test_tooltip_error_carries_the_one_line_and_stays_within_the_windows_limit() -> None:
    error = "The API key was rejected (401): create a new key in Immich under Account settings > API keys. " * 3
    text = tooltip(AppSnapshot(TrayState.ERROR, error=error), NOW)
    assert len(text) <= TOOLTIP_LIMIT
    assert text.startswith("Immich Sync: needs attention: The API key was rejected")
    assert text.endswith("…")
    assert "\n" not in tooltip(AppSnapshot(TrayState.ERROR, error="two\nlines"), NOW)


def test_tooltip_limit_holds_in_utf16_units_for_emoji_album_names() -> None:
    """Windows counts UTF-16 units (pystray's WCHAR[128]); an emoji is two of them."""
    from tray_sync.tray_presenter import utf16_len

    listing = Progress(Phase.LISTING, "🎄 Christmas " + "🎅🎁" * 60)
    text = tooltip(AppSnapshot(TrayState.SYNCING, progress=listing), NOW)
    assert len(text) < TOOLTIP_LIMIT < utf16_len("Immich Sync: syncing, checking " + listing.album_name)
    assert utf16_len(text) <= TOOLTIP_LIMIT and text.endswith("…")
    text.encode("utf-16-le")  # no half of a surrogate pair left at the cut
    assert text.startswith("Immich Sync: syncing, checking 🎄 Christmas 🎅🎁")


def test_notices_reach_the_tooltip_and_the_menu() -> None:
    notices = ("3 removals held in Family 2024: confirm them in Status…",)
    snapshot = AppSnapshot(TrayState.SYNCED, last_success_at=NOW, notices=notices)
    assert notices[0] in tooltip(snapshot, NOW)
    menu = build_menu(snapshot, NOW)
    assert menu[1] == MenuEntry(notices[0], enabled=False)
    assert notices[0] not in menu[0].label  # said once in the menu, on its own line
    many = replace(snapshot, notices=tuple(f"notice {i}" for i in range(5)))
    assert "5 things to check" in tooltip(many, NOW)
    assert "…and 2 more in Status…" in labels(build_menu(many, NOW))


# -- menu -------------------------------------------------------------------------------


def test_menu_for_a_synced_profile() -> None:
    snapshot = AppSnapshot(TrayState.SYNCED, last_success_at=NOW,
                           albums=(album("Family 2024", "/photos/Family 2024"), album("Trips", "/photos/Trips", 2)))
    menu = build_menu(snapshot, NOW)
    assert labels(menu) == [tooltip(snapshot, NOW), "-", "Sync now", "Pause", "Open folder", "-", "Status…",
                            "Settings…", "Open log", "-", "Quit"]
    assert not menu[0].enabled  # the status line, for desktops without tooltips
    assert find(menu, "Sync now").enabled and find(menu, "Sync now").action is Action.SYNC_NOW
    pause = find(menu, "Pause")
    assert [(c.label, c.action) for c in pause.children] == [
        ("For 1 hour", Action.PAUSE_HOUR), ("Until tomorrow", Action.PAUSE_TOMORROW),
        ("Until I resume", Action.PAUSE_INDEFINITE)]
    folders = find(menu, "Open folder").children
    assert [(c.label, c.action, c.argument) for c in folders] == [
        ("Family 2024", Action.OPEN_FOLDER, "/photos/Family 2024"), ("Trips", Action.OPEN_FOLDER, "/photos/Trips")]
    assert find(menu, "Status…").default
    assert find(menu, "Quit").action is Action.QUIT


def test_menu_spells_out_an_error_in_full_over_a_few_lines() -> None:
    error = ("home: The server rejected the API key (401): create a key in Immich (Account settings > API keys) "
             "and connect again.")
    menu = build_menu(AppSnapshot(TrayState.ERROR, error=error), NOW)
    assert menu[0].label == "Immich Sync: needs attention"
    lines = [e.label.strip() for e in menu[1:] if e.label.startswith("  ")]
    assert " ".join(lines) == error
    assert all(len(line) <= 70 for line in lines) and 2 <= len(lines) <= 3
    assert not any(e.enabled for e in menu[: 1 + len(lines)])
    long = build_menu(AppSnapshot(TrayState.ERROR, error="word " * 200), NOW)
    assert sum(1 for e in long if e.label.startswith("  ")) == 3 and long[3].label.endswith("…")


def test_held_removals_in_the_menu_and_tooltip_give_the_review_button_not_the_command_line() -> None:
    from tray_sync.app import GUI_CONFIRM_ROUTE, classify
    from tray_sync.sync.progress import AlbumResult, SyncReport, command_line_confirm_route, held_removals_note

    engine_note = held_removals_note(40, "Summer: 2025", command_line_confirm_route("c0ffee"))
    report = SyncReport((AlbumResult(album_sync_id=1, album_id="c0ffee", album_name="Summer: 2025", path="/p",
                                     held_removals=40, errors=(engine_note,)),))
    verdict = classify(report, False)
    assert verdict.state is TrayState.SYNCED and verdict.error is None  # a notice, not an error
    snapshot = AppSnapshot(verdict.state, last_success_at=NOW,
                           notices=("40 removals held in Summer: 2025: confirm them in Status…",))
    menu = build_menu(snapshot, NOW)
    assert "40 removals held in Summer: 2025: confirm them in Status…" in labels(menu)
    assert GUI_CONFIRM_ROUTE.endswith("Status…")  # the route the menu line names
    for text in (*labels(menu), tooltip(snapshot, NOW)):
        assert "tray-sync" not in text and "--confirm" not in text, text


def test_menu_when_paused_offers_resume_and_no_sync_now() -> None:
    menu = build_menu(AppSnapshot(TrayState.PAUSED), NOW)
    assert find(menu, "Resume syncing").action is Action.RESUME
    assert not find(menu, "Sync now").enabled
    assert "Pause" not in labels(menu)


def test_menu_when_not_set_up_leads_to_setup() -> None:
    menu = build_menu(AppSnapshot(TrayState.NOT_SET_UP), NOW)
    setup = find(menu, "Set up…")
    assert setup.action is Action.SETUP and setup.default
    assert "Sync now" not in labels(menu) and "Open folder" not in labels(menu)
    assert not find(menu, "Settings…").enabled
    assert find(menu, "Quit").enabled


def test_open_folder_lists_at_most_fifteen_albums() -> None:
    many = tuple(album(f"Album {i:02d}", f"/photos/{i}", i) for i in range(20))
    folders = find(build_menu(AppSnapshot(TrayState.SYNCED, albums=many), NOW), "Open folder").children
    assert len(folders) == 16 and folders[-1] == MenuEntry("…and 5 more in Status…", enabled=False)


def test_menu_without_albums_disables_open_folder() -> None:
    entry = find(build_menu(AppSnapshot(TrayState.SYNCED), NOW), "Open folder")
    assert not entry.enabled and entry.children == ()


def test_new_albums_are_offered_from_the_menu() -> None:
    offer = OfferedAlbum(1, "abc", "Summer 2026")
    menu = build_menu(AppSnapshot(TrayState.SYNCED, offered_albums=(offer,)), NOW)
    entry = find(menu, "New albums on the server (1)")
    (child,) = entry.children
    assert child.label == "Summer 2026"
    assert [(c.action, c.argument) for c in child.children] == [(Action.ADD_OFFERED, offer),
                                                                 (Action.DISMISS_OFFERED, offer)]
    two_servers = OfferedAlbum(2, "def", "Summer 2026", server="parents")
    menu = build_menu(AppSnapshot(TrayState.SYNCED, offered_albums=(offer, two_servers)), NOW)
    labels = [c.label for c in find(menu, "New albums on the server (2)").children]
    assert labels == ["Summer 2026", "Summer 2026 (on parents)"]


def test_menu_is_stable_across_progress_ticks_and_changes_on_transitions() -> None:
    """The tray compares menus for equality; progress ticks must not count as a change."""
    base = AppSnapshot(TrayState.SYNCING, progress=DOWNLOADING)
    later = replace(base, progress=replace(DOWNLOADING, files_done=200, bytes_done=1_000_000_000))
    assert present(base, NOW).menu == present(later, NOW).menu
    assert present(base, NOW).tooltip != present(later, NOW).tooltip
    done = AppSnapshot(TrayState.SYNCED, last_success_at=NOW)
    assert present(done, NOW).menu != present(base, NOW).menu


# -- icon state -------------------------------------------------------------------------


def test_progress_step_follows_bytes_then_files() -> None:
    assert progress_step(None) is None
    assert progress_step(Progress(Phase.CHECKING)) is None
    assert progress_step(replace(DOWNLOADING, bytes_done=0)) == 0
    assert progress_step(replace(DOWNLOADING, bytes_done=750_000_000)) == PROGRESS_STEPS // 2
    assert progress_step(replace(DOWNLOADING, bytes_done=1_500_000_000)) == PROGRESS_STEPS
    assert progress_step(Progress(Phase.DOWNLOADING, files_done=1, files_total=4)) == PROGRESS_STEPS // 4


def test_present_maps_state_and_step() -> None:
    view = present(AppSnapshot(TrayState.SYNCING, progress=DOWNLOADING), NOW)
    assert view.state is TrayState.SYNCING and view.progress_step == 2
    assert present(AppSnapshot(TrayState.SYNCED, progress=DOWNLOADING, last_success_at=NOW), NOW).progress_step is None


def test_pause_choices() -> None:
    assert pause_until(Action.PAUSE_HOUR, NOW) == NOW + timedelta(hours=1)
    tomorrow = pause_until(Action.PAUSE_TOMORROW, NOW)
    assert tomorrow is not None and tomorrow > NOW
    assert tomorrow.astimezone().date() == (NOW.astimezone() + timedelta(days=1)).date()
    assert tomorrow.astimezone().hour == 7
    assert pause_until(Action.PAUSE_INDEFINITE, NOW) is None


def test_pause_until_tomorrow_is_7_am_local_across_a_daylight_saving_change(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_module

    monkeypatch.setenv("TZ", "Europe/Berlin")  # clocks go forward on 29 March 2026 at 02:00
    time_module.tzset()
    try:
        until = pause_until(Action.PAUSE_TOMORROW, datetime(2026, 3, 28, 20, 0, tzinfo=UTC))
        assert until is not None and until.astimezone(UTC) == datetime(2026, 3, 29, 5, 0, tzinfo=UTC)  # 07:00 CEST
    finally:
        monkeypatch.undo()
        time_module.tzset()


# -- icons ------------------------------------------------------------------------------


def rgb_pixels(image: Image.Image) -> list[tuple[int, ...]]:
    data = image.convert("RGB").tobytes()
    return [tuple(data[i:i + 3]) for i in range(0, len(data), 3)]


def _on(background: tuple[int, int, int], image: Image.Image) -> Image.Image:
    tile = Image.new("RGBA", image.size, (*background, 255))
    tile.alpha_composite(image)
    return tile.convert("RGB")


def _difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean)


ALL_STATES = [(state, None) for state in TrayState] + [(TrayState.SYNCING, 6)]


@pytest.mark.parametrize("background", [(30, 30, 30), (240, 240, 240)], ids=["dark", "light"])
def test_every_state_icon_is_distinct_at_16_px(background: tuple[int, int, int]) -> None:
    images = {key: _on(background, state_icon(key[0], key[1], 16)) for key in ALL_STATES}
    keys = list(images)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            assert _difference(images[a], images[b]) > 6, (a, b)


@pytest.mark.parametrize("background", [(30, 30, 30), (240, 240, 240)], ids=["dark", "light"])
def test_badge_stands_out_from_the_panel(background: tuple[int, int, int]) -> None:
    for state in TrayState:
        tile = _on(background, state_icon(state, None, 16))
        corner = tile.crop((8, 8, 16, 16))  # the badge's quarter
        assert _difference(corner, Image.new("RGB", corner.size, background)) > 40, state


def test_badge_colour_is_the_state_colour() -> None:
    for state, colour in BADGE_COLOURS.items():
        image = state_icon(state, None, 64).convert("RGB")
        pixels = rgb_pixels(image.crop((40, 40, 64, 64)))
        close = [p for p in pixels if sum(abs(p[i] - colour[i]) for i in range(3)) < 30]
        assert len(close) > 40, state


def test_syncing_arc_grows_with_progress() -> None:
    steps = [state_icon(TrayState.SYNCING, step, 32).convert("RGB") for step in (0, 4, 8, PROGRESS_STEPS)]
    whiteness = [sum(1 for p in rgb_pixels(image) if min(p) > 220) for image in steps]
    assert whiteness == sorted(whiteness) and whiteness[-1] > whiteness[0] + 10


def test_inactive_states_grey_the_picture() -> None:
    def saturation(state: TrayState) -> float:
        top_left = state_icon(state, None, 64).convert("RGB").crop((4, 4, 30, 30)).convert("HSV")
        return ImageStat.Stat(top_left).mean[1]

    for state in (TrayState.PAUSED, TrayState.OFFLINE, TrayState.NOT_SET_UP):
        assert saturation(state) < saturation(TrayState.SYNCED) / 2, state


def test_a_profile_never_synced_does_not_show_the_synced_check() -> None:
    pending = present(AppSnapshot(TrayState.SYNCED), NOW)
    assert pending.state is TrayState.SYNCING and pending.progress_step == 0
    assert "not synced yet" in pending.tooltip
    done = present(AppSnapshot(TrayState.SYNCED, last_success_at=NOW), NOW)
    assert done.state is TrayState.SYNCED and done.progress_step is None


# -- the tray adapter (pystray faked: importing it needs a display) -----------------------


class _FakeMenuItem:
    def __init__(self, label: str, action: object, enabled: bool = True, default: bool = False) -> None:
        self.label, self.action, self.enabled, self.default = label, action, enabled, default


class _FakeMenu:
    SEPARATOR = object()

    def __init__(self, *items: object) -> None:
        self.items = items


class _RecordingIcon:
    """Records every property the tray sets, as pystray's Icon would receive it."""

    def __init__(self) -> None:
        self.__dict__["sets"] = []

    def __setattr__(self, name: str, value: object) -> None:
        self.sets.append(name)
        self.__dict__[name] = value


def test_the_tray_rebuilds_its_menu_on_transitions_only_and_callbacks_only_post() -> None:
    from types import SimpleNamespace

    from tray_sync.tray import TrayIcon

    posted: list[tuple[Action, object]] = []
    tray = TrayIcon(lambda action, argument: posted.append((action, argument)))
    tray._pystray = SimpleNamespace(Menu=_FakeMenu, MenuItem=_FakeMenuItem)
    icon = _RecordingIcon()
    tray._icon = icon
    albums = (album("Family 2024", "/photos/Family 2024"),)
    ticks = [AppSnapshot(TrayState.SYNCING, albums=albums, progress=replace(DOWNLOADING, files_done=n,
                                                                             bytes_done=n * 4_000_000))
             for n in range(0, 340, 10)]
    for snapshot in ticks:
        tray.apply(present(snapshot, NOW))
    assert icon.sets.count("menu") == 1  # the first view; 33 progress ticks later, still that one
    assert icon.sets.count("title") == len(ticks)  # the tooltip carries the numbers
    assert 1 < icon.sets.count("icon") <= PROGRESS_STEPS + 1  # the arc moves in steps, not per tick
    tray.apply(present(AppSnapshot(TrayState.SYNCED, albums=albums, last_success_at=NOW), NOW))
    assert icon.sets.count("menu") == 2  # syncing -> synced is a transition
    tray.apply(present(AppSnapshot(TrayState.SYNCED, albums=albums, last_success_at=NOW), NOW))
    assert icon.sets.count("menu") == 2

    folder_item = next(item for item in icon.menu.items if getattr(item, "label", "") == "Open folder")
    (family,) = folder_item.action.items
    family.action(icon, family)  # what pystray calls on its own thread
    assert posted == [(Action.OPEN_FOLDER, "/photos/Family 2024")]
    assert icon.sets.count("menu") == 2  # the callback posted; it changed nothing itself


def test_an_ampersand_in_an_album_name_is_not_a_windows_mnemonic(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from tray_sync.tray import TrayIcon

    def folder_labels(platform: str) -> list[str]:
        monkeypatch.setattr("tray_sync.tray.sys.platform", platform)
        tray = TrayIcon(lambda action, argument: None)
        tray._pystray = SimpleNamespace(Menu=_FakeMenu, MenuItem=_FakeMenuItem)
        tray._icon = _RecordingIcon()
        tray.apply(present(AppSnapshot(TrayState.SYNCED, last_success_at=NOW,
                                       albums=(album("Tom & Jerry", "/photos/tj"),)), NOW))
        folders = next(i for i in tray._icon.menu.items if getattr(i, "label", "") == "Open folder")
        return [item.label for item in folders.action.items]

    assert folder_labels("win32") == ["Tom && Jerry"]
    assert folder_labels("linux") == ["Tom & Jerry"]
