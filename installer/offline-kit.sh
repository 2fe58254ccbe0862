#!/usr/bin/env bash
# An installation kit for hospital PCs without a network (Linux or Windows).
#
#   bash installer/offline-kit.sh OUT_DIR [--build] [--windows [--python X.Y]]
#
# On a machine with the network (or a local package index), this collects every wheel zsmed needs into
# OUT_DIR/wheels: by default the reading-room install (running bundles, the app, the case log: extras
# runtime and desktop, no torch); with --build also torch 2.13.0 (CPU) and the train extra, for the PC
# where classifiers are built. Without --windows the kit is for PCs like this machine (same OS, CPU
# architecture and Python minor version: run it with that Python, PYTHON=python3.X); with --windows it
# is for 64-bit Windows PCs with Python X.Y (default 3.12) from python.org, the wheels chosen for
# them here. It writes OUT_DIR/SHA256SUMS over the wheels, OUT_DIR/PLATFORM (what the kit is for:
# the installer refuses another PC) and the installer: install.py with install.sh (Linux) or
# install.cmd (Windows). Carry OUT_DIR to the PC (USB stick, share) and run there, without a network:
#
#   bash OUT_DIR/install.sh [PREFIX]        (Linux)
#   OUT_DIR\install.cmd [PREFIX]            (Windows)
#
set -euo pipefail

usage() { echo "usage: bash installer/offline-kit.sh OUT_DIR [--build] [--windows [--python X.Y]]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out="$1"; shift
build=0
windows=0
target_python=3.12
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=1 ;;
    --windows) windows=1 ;;
    --python) [ $# -ge 2 ] || usage; target_python="$2"; shift ;;
    *) usage ;;
  esac
  shift
done
[[ "$target_python" =~ ^3\.[0-9]+$ ]] || { echo "offline kit: --python wants a version such as 3.12" >&2; exit 2; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
mkdir -p "$out/wheels"
out="$(cd "$out" && pwd)"
wheels="$out/wheels"

# A throwaway environment with a current pip, so the host's own Python is not touched.
tool_env="$(mktemp -d)"
trap 'rm -rf "$tool_env"' EXIT
"$python" -m venv "$tool_env"
pip=("$tool_env/bin/python" -m pip --disable-pip-version-check)
"${pip[@]}" install -q --upgrade pip wheel

# The wheels of the PCs the kit is for: this machine's, or 64-bit Windows with that Python (pip chooses
# them here as it would there; --only-binary below, so nothing is built for the wrong system).
target=()
if [ "$windows" = 1 ]; then
  target=(--platform win_amd64 --implementation cp --python-version "$target_python")
  platform="windows-x86_64 cp${target_python/./}"
else
  # as the installer will name the PC (install.py's own this_pc)
  platform="$(cd "$repo/installer" && "$python" -B -c 'import offline_install; print(offline_install.this_pc())')"
fi

echo "offline kit: building the zsmed wheel"
"${pip[@]}" wheel -q --no-deps --wheel-dir "$wheels" "$repo"
zsmed_wheel="$(ls -t "$wheels"/zsmed-*.whl | head -n 1)"

extras="runtime,desktop"
if [ "$build" = 1 ]; then
  extras="runtime,desktop,train"
  # torch first, the CPU build, pinned: the train extra would otherwise let pip reach for a multi-GB
  # CUDA build. Where this machine's pip index has no CPU build, set TORCH_INDEX_URL (for example
  # https://download.pytorch.org/whl/cpu).
  echo "offline kit: torch 2.13.0 (CPU)"
  torch_index=()
  [ -n "${TORCH_INDEX_URL:-}" ] && torch_index=(--extra-index-url "$TORCH_INDEX_URL")
  "${pip[@]}" download -q --dest "$wheels" --only-binary=:all: "${target[@]}" "${torch_index[@]}" "torch==2.13.0"
  echo "torch==2.13.0" > "$tool_env/constraints.txt"
else
  : > "$tool_env/constraints.txt"
fi
echo "offline kit: the wheels zsmed[$extras] needs"
"${pip[@]}" download -q --dest "$wheels" --only-binary=:all: "${target[@]}" --find-links "$wheels" \
  --constraint "$tool_env/constraints.txt" "${zsmed_wheel}[$extras]" pip setuptools wheel

cp "$repo/installer/offline_install.py" "$out/install.py"
if [ "$windows" = 1 ]; then
  # install.cmd: the Python the kit was made for (the py launcher python.org installs, else python on PATH)
  sed "s/@PYTHON_VERSION@/$target_python/g" "$repo/installer/offline-install.cmd" | sed 's/$/\r/' > "$out/install.cmd"
else
  cp "$repo/installer/offline-install.sh" "$out/install.sh"
fi
echo "$extras" > "$out/EXTRAS"
echo "$platform" > "$out/PLATFORM"
(cd "$out" && find wheels -name '*.whl' -printf '%P\n' | sort | sed 's|^|wheels/|' | xargs sha256sum > SHA256SUMS)
count="$(ls "$wheels"/*.whl | wc -l)"
size="$(du -sh "$out" | cut -f1)"
echo "offline kit: $out: $count wheels ($size) for $platform, zsmed[$extras]"
if [ "$windows" = 1 ]; then
  echo "offline kit: on the hospital PC (Python $target_python from python.org installed): $(basename "$out")\\install.cmd [PREFIX]"
else
  echo "offline kit: on the hospital PC: bash $(basename "$out")/install.sh [PREFIX]"
fi
