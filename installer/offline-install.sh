#!/usr/bin/env bash
# Install zsmed from an offline kit (installer/offline-kit.sh) with no network at all (Linux).
#
#   bash install.sh [PREFIX]
#
# PREFIX defaults to /opt/zsmed as root, else ~/.local/share/zsmed-app. The work is install.py's (the same
# on Windows, where install.cmd runs it): it refuses a kit made for another system or Python and a damaged
# one (SHA256SUMS) before installing anything, makes a Python environment in PREFIX/venv, installs from the
# kit's wheels only (pip never looks for an index), links zsmed and zsmed-desktop into a bin folder on
# PATH, adds the app to the desktop's menu, and ends with `zsmed doctor`. Running it again upgrades in
# place. ZSMED_BIN_DIR and ZSMED_MENU_DIR move the links and the menu entry; PYTHON names the Python.
set -euo pipefail

kit="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "zsmed install: no $python on this PC: install Python 3.10 or newer first" >&2; exit 1; }
exec "$python" "$kit/install.py" "$@"
