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

[ "$mode" = "test" ] && bash installer/system-packages.sh

case "$mode" in
  run)
    exec "$VENV/bin/zsmed-desktop" "$@"
    ;;
  test)
    export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
    export ZSMED_CACHE_DIR="${ZSMED_CACHE_DIR:-$PWD/.cache/zsmed}"
    export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
    # Every check runs even when an earlier one fails, so one run reports everything.
    failed=()
    "$VENV/bin/ruff" check zsmed zsmed_desktop tests scripts export installer || failed+=(ruff)
    "$VENV/bin/lint-imports" --no-cache || failed+=(import-linter)
    "$VENV/bin/mypy" --no-error-summary || failed+=(mypy)
    # A test writes only under its temporary folders: one that leaves files in the checkout (beside the
    # reference bundles, say) would change what the next run and the next commit see.
    tree_before="$(git status --porcelain 2>/dev/null || true)"
    # pytest exits 5 when nothing was collected: a broken suite, so it counts as a failure too.
    "$VPY" -m pytest -q "$@" || failed+=(pytest)
    tree_after="$(git status --porcelain 2>/dev/null || true)"
    if [ "$tree_before" != "$tree_after" ]; then
      echo "the tests changed the checkout:" >&2
      diff <(echo "$tree_before") <(echo "$tree_after") >&2 || true
      failed+=(tests-wrote-into-the-checkout)
    fi
    if [ ${#failed[@]} -gt 0 ]; then
      echo "FAILED checks: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: bash installer/dev.sh run|test [args]" >&2
    exit 2
    ;;
esac
