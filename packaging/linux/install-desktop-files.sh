#!/bin/sh
# Install the menu entry, AppStream metainfo and icons of Immich Tray Sync into a prefix.
#   packaging/linux/install-desktop-files.sh [PREFIX] [EXEC]
# PREFIX defaults to ~/.local (per user); use /usr for a distribution package (with DESTDIR).
# EXEC is the program the menu entry starts: tray-sync-app (pip/pipx, the default), or the
# bundle's windowed program, e.g. /opt/immich-tray-sync/immich-tray-sync.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
prefix=${1:-$HOME/.local}
exec_cmd=${2:-tray-sync-app}
id=io.github.immich_tray_sync.ImmichTraySync
dest=${DESTDIR:-}$prefix/share

case "$exec_cmd" in
  *[!A-Za-z0-9_./+-]*) echo "install-desktop-files.sh: EXEC must be a plain path without spaces or quotes" >&2; exit 2 ;;
esac

mkdir -p "$dest/applications" "$dest/metainfo"
sed -e "s|^Exec=.*|Exec=$exec_cmd|" -e "s|^TryExec=.*|TryExec=$exec_cmd|" \
  "$here/$id.desktop" > "$dest/applications/$id.desktop"
cp "$here/$id.metainfo.xml" "$dest/metainfo/$id.metainfo.xml"
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "$dest/icons/hicolor/${size}x${size}/apps"
  cp "$repo/assets/icons/icon-$size.png" "$dest/icons/hicolor/${size}x${size}/apps/$id.png"
done
if [ -z "${DESTDIR:-}" ]; then
  command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database -q "$dest/applications" || true
  command -v gtk-update-icon-cache >/dev/null 2>&1 && gtk-update-icon-cache -q -t "$dest/icons/hicolor" || true
fi
echo "Installed $id into $dest"
