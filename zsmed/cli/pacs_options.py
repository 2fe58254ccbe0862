"""The PACS options the commands that reach it share (``zsmed send``, ``zsmed echo``, ``zsmed log sr --send``):
--pacs, --calling-ae and --timeout, and the PACS they name, else the settings'."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zsmed.dicom.network import PacsNode, TlsConfig
    from zsmed.site import SiteConfig


def add_pacs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pacs", default="", metavar="AE@HOST:PORT",
                        help="the PACS (default: the one in this PC's settings)")
    parser.add_argument("--calling-ae", default="", metavar="AE",
                        help="this workstation's AE title (default: the settings', else ZSMED)")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="S",
                        help="seconds to wait for the PACS (default 15)")
    add_tls_arguments(parser)


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tls-ca", type=Path, default=None, metavar="PEM",
                        help="DICOM over TLS: the certificate authorities trusted (default: the settings')")
    parser.add_argument("--tls-cert", type=Path, default=None, metavar="PEM",
                        help="this workstation's certificate, for mutual TLS and for receiving")
    parser.add_argument("--tls-key", type=Path, default=None, metavar="PEM", help="the key of --tls-cert")


def tls_config(args: argparse.Namespace, site: SiteConfig) -> TlsConfig | None:
    """The TLS of --tls-ca (with --tls-cert / --tls-key), else the settings'."""
    from zsmed.dicom.network import TlsConfig

    if args.tls_ca is None:
        if args.tls_cert is not None or args.tls_key is not None:
            from zsmed.errors import ConfigError

            raise ConfigError("--tls-cert and --tls-key go with --tls-ca (the certificate authorities trusted)")
        return site.tls_config()
    return TlsConfig(args.tls_ca, args.tls_cert, args.tls_key)


def pacs_node(args: argparse.Namespace) -> PacsNode:
    """The PACS of --pacs, else the settings'; ``ConfigError`` where there is none."""
    from zsmed.dicom.network import PacsNode
    from zsmed.errors import ConfigError
    from zsmed.site import load_site_config

    site = load_site_config()
    calling = args.calling_ae or site.pacs_calling_ae
    tls = tls_config(args, site)
    if args.pacs:
        return PacsNode.parse(args.pacs, calling, tls)
    node = site.pacs_node()
    if node is None:
        raise ConfigError("no PACS is set: give --pacs AE_TITLE@HOST:PORT, or set it in the app's Settings")
    return PacsNode.parse(node.address(), calling, tls)
