"""A separate process that logs predictions (for the concurrency and SIGKILL tests and the bench).

python -m tests.store.writer LOG N BATCH SEED [SOURCE...]: logs N predictions of the reference
bundle in batches of BATCH, printing "committed FIRST LAST" after each transaction."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.store.conftest import REFERENCE, fake_results


def main(argv: list[str]) -> int:
    from zsmed.runtime.bundle import read_bundle
    from zsmed.site import SiteConfig
    from zsmed.store import open_case_log

    log_path, n, batch, seed = Path(argv[0]), int(argv[1]), int(argv[2]), int(argv[3])
    sources = argv[4:] or [__file__]
    bundle = read_bundle(REFERENCE / "ham4_protonet_lite0_v1.zsmb")
    results = fake_results([sources[i % len(sources)] for i in range(n)], seed=seed)
    with open_case_log(log_path, site=SiteConfig(), timeout=60) as log:
        print("open", flush=True)
        for start in range(0, n, batch):
            ids = log.record_predictions(bundle, results[start : start + batch], workstation=f"writer-{seed}")
            print(f"committed {ids[0]} {ids[-1]}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
