#!/bin/sh
# Install (or remove) the menu entry, AppStream metainfo and icons of Immich Tray Sync in a prefix.
#   packaging/linux/install-desktop-files.sh [PREFIX] [EXEC]
#   packaging/linux/install-desktop-files.sh --remove [PREFIX]
# PREFIX defaults to ~/.local (per user); use /usr for a distribution package (with DESTDIR).
# EXEC is the program the menu entry starts: by default tray-sync-app, by its full path when it is
# on PATH now (a desktop session's PATH often lacks ~/.local/bin, where pipx puts it), or the
# bundle's windowed program, e.g. /opt/immich-tray-sync/immich-tray-sync.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
id=io.github.immich_tray_sync.ImmichTraySync
sizes="16 24 32 48 64 128 256 512"

refresh_caches() {
  # Packagers run these in their post-install hooks; a direct install does it itself.
  [ -n "${DESTDIR:-}" ] && return 0
  if [ -d "$dest/applications" ] && command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q "$dest/applications" || true
  fi
  if [ -d "$dest/icons/hicolor" ] && command -v gtk-update-icon-cache >/dev/null 2>&1; then
    gtk-update-icon-cache -q -t "$dest/icons/hicolor" || true
  fi
}

remove=false
if [ "${1:-}" = "--remove" ]; then
  remove=true
  shift
fi
prefix=${1:-$HOME/.local}
dest=${DESTDIR:-}$prefix/share

if $remove; then
  rm -f "$dest/applications/$id.desktop" "$dest/metainfo/$id.metainfo.xml"
  for size in $sizes; do
    rm -f "$dest/icons/hicolor/${size}x${size}/apps/$id.png"
  done
  refresh_caches
  echo "Removed $id from $dest"
  exit 0
fi

if [ -n "${2:-}" ]; then
  exec_cmd=$2
else
  exec_cmd=tray-sync-app
  found=$(command -v tray-sync-app 2>/dev/null || true)
  case "$found" in
    "" | *[!A-Za-z0-9_./+-]*) ;;  # not found, or a path that would need quoting: keep the plain name
    *) [ -z "${DESTDIR:-}" ] && exec_cmd=$found ;;
  esac
fi
case "$exec_cmd" in
  *[!A-Za-z0-9_./+-]*) echo "install-desktop-files.sh: EXEC must be a plain path without spaces or quotes" >&2; exit 2 ;;
esac

mkdir -p "$dest/applications" "$dest/metainfo"
sed -e "s|^Exec=.*|Exec=$exec_cmd|" -e "s|^TryExec=.*|TryExec=$exec_cmd|" \
  "$here/$id.desktop" > "$dest/applications/$id.desktop"
cp "$here/$id.metainfo.xml" "$dest/metainfo/$id.metainfo.xml"
for size in $sizes; do
  mkdir -p "$dest/icons/hicolor/${size}x${size}/apps"
  cp "$repo/assets/icons/icon-$size.png" "$dest/icons/hicolor/${size}x${size}/apps/$id.png"
done
refresh_caches
echo "Installed $id into $dest (menu entry runs $exec_cmd)"
