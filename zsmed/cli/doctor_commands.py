"""``zsmed doctor``: one line per check of this workstation's installation (settings, folders, case
log, models, engines, codecs, display, signing), for the person asked why zsmed does not work on a PC.

Exit status 0 when nothing failed (warnings do not fail), 1 when a check failed. The checks are in
``zsmed.doctor``; nothing here imports torch or Qt at module level.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(groups: Any) -> None:
    doctor = groups.top.add_parser(
        "doctor",
        help="check this PC's installation: settings, folders, case log, models, engines, codecs",
        description="Check this workstation's zsmed installation and say, one line per check, what is ok, what "
                    "deserves a look (warning) and what stops zsmed working (FAIL), with the fix. Changes nothing "
                    "(a temporary file, deleted at once, proves each folder writable) and uses no network. Exit "
                    "status 1 when a check failed.",
    )
    doctor.add_argument("--json", action="store_true",
                        help="the results as one JSON object (version, platform, checks: name, status, detail)")
    doctor.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    from zsmed.doctor import failed, format_lines, report, run_checks
    from zsmed.runtime.validate import escape_text

    checks = run_checks()
    if args.json:
        print(json.dumps(report(checks), indent=2))
    else:
        for line in format_lines(checks):
            print(escape_text(line))  # paths and messages quote files: no control characters reach the terminal
    return 1 if failed(checks) else 0
