"""The PACS options the commands that reach it share (``zsmed send``, ``zsmed echo``, ``zsmed log sr --send``):
--pacs, --calling-ae and --timeout, and the PACS they name, else the settings'."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zsmed.dicom.network import PacsNode


def add_pacs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pacs", default="", metavar="AE@HOST:PORT",
                        help="the PACS (default: the one in this PC's settings)")
    parser.add_argument("--calling-ae", default="", metavar="AE",
                        help="this workstation's AE title (default: the settings', else ZSMED)")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="S",
                        help="seconds to wait for the PACS (default 15)")


def pacs_node(args: argparse.Namespace) -> PacsNode:
    """The PACS of --pacs, else the settings'; ``ConfigError`` where there is none."""
    from zsmed.dicom.network import PacsNode
    from zsmed.errors import ConfigError
    from zsmed.site import load_site_config

    site = load_site_config()
    calling = args.calling_ae or site.pacs_calling_ae
    if args.pacs:
        return PacsNode.parse(args.pacs, calling)
    node = site.pacs_node()
    if node is None:
        raise ConfigError("no PACS is set: give --pacs AE_TITLE@HOST:PORT, or set it in the app's Settings")
    return PacsNode.parse(node.address(), calling)
