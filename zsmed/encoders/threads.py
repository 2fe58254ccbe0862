"""How many CPU threads torch may use for encoding.

torch sizes its intra-op pool from the machine's physical cores, which oversubscribes a container
or a VM limited to fewer CPUs (a 2-CPU quota on a 32-core host would run 16 threads and crawl).
We cap the pool at the CPUs this process may actually use, or at ``ZSMED_NUM_THREADS``.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

THREADS_ENV = "ZSMED_NUM_THREADS"

_lock = threading.Lock()
_configured: int | None = None


def _cgroup_cpu_limit() -> int | None:
    """CPUs granted by a cgroup v2 (or v1) quota, if any (Linux containers)."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return max(1, math.ceil(int(text[0]) / int(text[1])))
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may run on: affinity mask and container quota, whichever is smaller."""
    try:
        count = len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return max(1, min(count, limit) if limit else count)


def wanted_threads() -> int:
    """``ZSMED_NUM_THREADS`` if set to a positive integer, else the usable CPU count."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value > 0:
            return value
    return available_cpus()


def configure_torch_threads(threads: int | None = None) -> int:
    """Cap torch's intra-op thread pool once per process; returns the thread count in use.

    Without an explicit request only lowers the count, so a caller that already chose fewer
    threads (``torch.set_num_threads`` or ``OMP_NUM_THREADS``) keeps its choice.
    """
    global _configured
    import torch

    with _lock:
        if threads is None and _configured is not None:
            return int(torch.get_num_threads())
        explicit = threads is not None or bool(os.environ.get(THREADS_ENV, "").strip())
        target = threads if threads is not None else wanted_threads()
        current = int(torch.get_num_threads())
        if (explicit and target != current) or target < current:
            torch.set_num_threads(max(1, target))
        _configured = int(torch.get_num_threads())
        return _configured
