#!/bin/sh
# Add XRayDesk to the desktop menu, pointing at the XRayDesk/ folder beside this script.
#   ./install.sh            for the current user (~/.local/share)
#   sudo ./install.sh       for everyone (/usr/local/share), e.g. after unpacking in /opt
#   ./install.sh --user     for the current user even as root
# The app itself never needs installing: XRayDesk/XRayDesk runs from wherever it lies.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
app="$here/XRayDesk/XRayDesk"
[ -x "$app" ] || { echo "install.sh: $app not found; run me from the unpacked archive" >&2; exit 1; }
share="${XDG_DATA_HOME:-$HOME/.local/share}"
if [ "$(id -u)" = 0 ] && [ "${1:-}" != "--user" ]; then share=/usr/local/share; fi
mkdir -p "$share/applications" "$share/icons/hicolor/256x256/apps"
cp "$here/xraydesk.png" "$share/icons/hicolor/256x256/apps/xraydesk.png"
# the Exec key quotes the path (spaces are fine); characters it would have to escape are refused
case "$app" in
  *[\"\`\$\\\|%\&]*) echo "install.sh: move the folder to a path without \" \` \$ \\ | % &" >&2; exit 1 ;;
esac
sed -e "s|^Exec=.*|Exec=\"$app\" %f|" -e "s|^TryExec=.*|TryExec=$app|" \
    "$here/xraydesk.desktop" > "$share/applications/xraydesk.desktop"
if command -v update-desktop-database >/dev/null 2>&1; then
  update-desktop-database "$share/applications" || true
fi
if command -v gtk-update-icon-cache >/dev/null 2>&1; then
  gtk-update-icon-cache -q -t "$share/icons/hicolor" 2>/dev/null || true
fi
echo "XRayDesk added to the menu ($share/applications/xraydesk.desktop -> $app)"
