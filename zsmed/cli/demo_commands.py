"""``zsmed demo``: the whole path on the DICOM files embedded with pydicom, headless."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _demo(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from zsmed.demo import run_demo

    report = run_demo(Path(args.out) if args.out else None)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=2))
    return 0


def register(groups: Any) -> None:
    parser = groups.top.add_parser("demo", help="headless demo on the DICOM files embedded with pydicom")
    parser.add_argument("--out", help="folder for the demo's model files (default: a temporary folder)")
    parser.add_argument("--json", help="also write the demo report as JSON here")
    parser.set_defaults(handler=_demo)
