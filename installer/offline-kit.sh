#!/usr/bin/env bash
# An installation kit for hospital PCs without a network (Linux).
#
#   bash installer/offline-kit.sh OUT_DIR [--build]
#
# On a machine with the network (or a local package index) and the same OS, CPU architecture and
# Python minor version as the hospital PCs, this collects every wheel zsmed needs into OUT_DIR/wheels:
# by default the reading-room install (running bundles, the app, the case log: extras runtime and
# desktop, no torch); with --build also torch 2.13.0 (CPU) and the train extra, for the PC where
# classifiers are built. It writes OUT_DIR/SHA256SUMS over the wheels and copies install.sh beside
# them. Carry OUT_DIR to the PC (USB stick, share) and run there, without a network:
#
#   bash OUT_DIR/install.sh [PREFIX]
#
set -euo pipefail

usage() { echo "usage: bash installer/offline-kit.sh OUT_DIR [--build]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out="$1"; shift
build=0
for arg in "$@"; do
  case "$arg" in
    --build) build=1 ;;
    *) usage ;;
  esac
done

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
  "${pip[@]}" download -q --dest "$wheels" --only-binary=:all: "${torch_index[@]}" "torch==2.13.0"
  echo "torch==2.13.0" > "$tool_env/constraints.txt"
else
  : > "$tool_env/constraints.txt"
fi
echo "offline kit: the wheels zsmed[$extras] needs"
"${pip[@]}" download -q --dest "$wheels" --only-binary=:all: --find-links "$wheels" \
  --constraint "$tool_env/constraints.txt" "${zsmed_wheel}[$extras]" pip setuptools wheel

cp "$repo/installer/offline-install.sh" "$out/install.sh"
echo "$extras" > "$out/EXTRAS"
(cd "$out" && find wheels -name '*.whl' -printf '%P\n' | sort | sed 's|^|wheels/|' | xargs sha256sum > SHA256SUMS)
count="$(ls "$wheels"/*.whl | wc -l)"
size="$(du -sh "$out" | cut -f1)"
py="$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
echo "offline kit: $out: $count wheels ($size) for Python $py on $(uname -m), zsmed[$extras]"
echo "offline kit: on the hospital PC: bash $(basename "$out")/install.sh [PREFIX]"
