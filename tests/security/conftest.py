"""Helpers for the hostile-input suite: crafted files are opened in a child process with a memory
ceiling and a time limit, and the child reports its own peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runtime.conftest import reference_bundles

REPO = Path(__file__).resolve().parents[2]
# Hard ceiling on the child's address space: an attack that allocates gigabytes fails there (a
# MemoryError, not a swapped machine). Address space is larger than resident memory (thread
# stacks, onnxruntime's arenas), so the 1 GB target is asserted on the peak RSS the child reports.
ADDRESS_SPACE_LIMIT = 6 << 30
PEAK_RSS_LIMIT_MB = 1024
TIME_LIMIT_S = 30.0


@dataclass
class Guarded:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float  # the child's own peak resident memory
    seconds: float


def _limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


# The peak is VmHWM (this process's own high-water mark since exec); ru_maxrss would also count
# the pytest process the child was forked from.
_WRAPPER = """
import json, sys
def _report():
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    sys.stderr.write("\\n@@PEAK@@" + json.dumps(kb) + "\\n")
import atexit
atexit.register(_report)
"""


def run_guarded(code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None,
                timeout: float = TIME_LIMIT_S) -> Guarded:
    """Run ``code`` in a fresh Python with the ceilings above; returns what it said and its peak RSS."""
    full_env = {**os.environ, **(env or {})}
    full_env.setdefault("PYTHONPATH", str(REPO))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER + textwrap.dedent(code)], capture_output=True, text=True,
                          env=full_env, cwd=cwd or REPO, timeout=timeout, preexec_fn=_limit)
    seconds = time.perf_counter() - start
    stderr, _, peak = proc.stderr.rpartition("@@PEAK@@")
    peak_kb = json.loads(peak.strip()) if peak.strip() else 0
    return Guarded(proc.returncode, proc.stdout, stderr if peak else proc.stderr, peak_kb / 1024.0, seconds)


def assert_within_limits(result: Guarded) -> None:
    assert result.seconds <= TIME_LIMIT_S, f"took {result.seconds:.1f} s"
    assert 0 < result.peak_rss_mb <= PEAK_RSS_LIMIT_MB, f"peak RSS {result.peak_rss_mb:.0f} MB"
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


@pytest.fixture(scope="session")
def genuine_bundle() -> Path:
    bundles = reference_bundles()
    if not bundles:
        pytest.skip("no reference bundle in export/reference")
    return bundles[0]


@pytest.fixture()
def user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A fresh user data and cache folder, for this process and for guarded children."""
    env = {"ZSMED_DATA_DIR": str(tmp_path / "data"), "ZSMED_CACHE_DIR": str(tmp_path / "cache")}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ZSMED_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("ZSMED_REQUIRE_SIGNATURE", raising=False)
    return env
