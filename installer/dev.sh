#!/usr/bin/env bash
# Set up zsmed in ./.venv on a fresh machine and run the main job or the test suite.
#   bash installer/dev.sh run    install, then start the desktop app (headless demo without a display)
#   bash installer/dev.sh test   install with the dev tools, then run lint, import contracts and tests
# torch 2.13.0 (CPU) is installed first, from the local wheel where there is one, so that no
# requirement can pull a multi-GB CUDA build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"; shift || true
PY="${PYTHON:-python3}"
VENV="${ZSMED_VENV:-.venv}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
stamp="$VENV/.zsmed-installed-$mode"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  "$VPY" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  "$VPY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
  extras="runtime,train,desktop,demo"
  [ "$mode" = "test" ] && extras="$extras,dev"
  "$VPY" -m pip install -q --disable-pip-version-check -e ".[$extras]"
  touch "$stamp"
fi

case "$mode" in
  run)
    exec "$VENV/bin/zsmed-desktop" "$@"
    ;;
  test)
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
    export ZSMED_CACHE_DIR="${ZSMED_CACHE_DIR:-$PWD/.cache/zsmed}"
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    "$VENV/bin/ruff" check zsmed zsmed_desktop tests
    "$VENV/bin/lint-imports" --no-cache
    "$VENV/bin/mypy" --no-error-summary
    set +e
    "$VPY" -m pytest -q "$@"
    rc=$?
    set -e
    # pytest exits 5 when the selection is empty; that is a broken suite, not a pass.
    exit $rc
    ;;
  *)
    echo "usage: bash installer/dev.sh run|test [args]" >&2
    exit 2
    ;;
esac
