"""`tray-sync autostart on|off|status`: start the tray app at login, or stop doing so."""

from __future__ import annotations

import argparse

from tray_sync import autostart
from tray_sync.context import Context


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "autostart", help="start the tray app at login (on), stop it (off), or show what is set (status)"
    )
    parser.add_argument("action", nargs="?", choices=("on", "off", "status"), default="status",
                        help="default: status")


def run(args: argparse.Namespace, ctx: Context) -> int:
    if args.action == "on":
        state = autostart.enable(home=autostart.profile_home(ctx.home_arg))
        ctx.out(state.describe())
        if state.problem:
            return 1
        return 0
    if args.action == "off":
        removed = autostart.disable()
        item = autostart.login_item()
        if removed:
            ctx.out(f"Autostart is off: removed {item.location}.")
        else:
            ctx.out(f"Autostart was already off ({item.location} does not exist).")
        return 0
    ctx.out(autostart.describe())
    return 0
