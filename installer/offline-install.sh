#!/usr/bin/env bash
# Install zsmed from an offline kit (installer/offline-kit.sh) with no network at all.
#
#   bash install.sh [PREFIX]
#
# PREFIX defaults to /opt/zsmed as root, else ~/.local/share/zsmed-app. It checks every wheel against
# SHA256SUMS, makes a Python environment in PREFIX/venv, installs from the kit's wheels only (pip never
# looks for an index), links zsmed and zsmed-desktop into a bin folder on PATH, adds the app to the
# desktop's menu, and ends with `zsmed doctor`. Running it again upgrades in place. ZSMED_BIN_DIR and
# ZSMED_MENU_DIR move the links and the menu entry.
set -euo pipefail

kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ "$(id -u)" = 0 ]; then
  prefix="${1:-/opt/zsmed}"; bin_dir=/usr/local/bin; menu_dir=/usr/share/applications
else
  prefix="${1:-$HOME/.local/share/zsmed-app}"; bin_dir="$HOME/.local/bin"; menu_dir="$HOME/.local/share/applications"
fi
bin_dir="${ZSMED_BIN_DIR:-$bin_dir}"; menu_dir="${ZSMED_MENU_DIR:-$menu_dir}"  # IT's own places
python="${PYTHON:-python3}"
extras="$(cat "$kit/EXTRAS" 2>/dev/null || echo runtime,desktop)"

fail() { echo "zsmed install: $*" >&2; exit 1; }
command -v "$python" >/dev/null || fail "no $python on this PC: install Python 3.10 or newer first"
"$python" -c 'import venv, ensurepip' 2>/dev/null \
  || fail "$python cannot make environments: install the python3-venv package first"

echo "zsmed install: checking the kit's wheels"
(cd "$kit" && sha256sum --quiet -c SHA256SUMS) \
  || fail "the kit is damaged (a wheel does not match SHA256SUMS): copy it again"

mkdir -p "$prefix"
prefix="$(cd "$prefix" && pwd)"
# Nothing from this PC's pip configuration (an index, a proxy) and no index at all: the kit only.
export PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1
"$python" -m venv "$prefix/venv"
venv_pip=("$prefix/venv/bin/python" -m pip)
"${venv_pip[@]}" install -q --no-index --find-links "$kit/wheels" --upgrade pip
wheel="$(ls -t "$kit"/wheels/zsmed-*.whl | head -n 1)"
echo "zsmed install: installing zsmed[$extras] into $prefix"
"${venv_pip[@]}" install -q --no-index --find-links "$kit/wheels" --upgrade "${wheel}[$extras]"

mkdir -p "$bin_dir"
for command in zsmed zsmed-desktop; do
  ln -sf "$prefix/venv/bin/$command" "$bin_dir/$command"
done
if [ -d "$(dirname "$menu_dir")" ]; then
  mkdir -p "$menu_dir"
  cat > "$menu_dir/zsmed.desktop" <<EOF
[Desktop Entry]
Type=Application
Name=zsmed
Comment=Build and run image classifiers from a few local examples, offline
Exec=$prefix/venv/bin/zsmed-desktop %F
Terminal=false
Categories=Graphics;MedicalSoftware;Science;
EOF
fi
echo "zsmed install: done: $bin_dir/zsmed, $bin_dir/zsmed-desktop (the app is in the desktop's menu)"
"$prefix/venv/bin/zsmed" doctor || echo "zsmed install: 'zsmed doctor' found something to fix (above)" >&2
