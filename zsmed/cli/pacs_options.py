"""The PACS options the commands that reach it share (``zsmed send``, ``zsmed echo``, ``zsmed log sr --send``):
--pacs, --calling-ae and --timeout, and the PACS they name, else the settings'; and how a send's outcome is said."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zsmed.dicom.network import PacsNode, SendResult, TlsConfig
    from zsmed.dicom.receiver import Batch, ReceiverConfig
    from zsmed.site import SiteConfig


def add_pacs_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pacs", default="", metavar="AE@HOST:PORT",
                        help="the PACS (default: the one in this PC's settings)")
    parser.add_argument("--calling-ae", default="", metavar="AE",
                        help="this workstation's AE title (default: the settings', else ZSMED)")
    parser.add_argument("--timeout", type=float, default=15.0, metavar="S",
                        help="seconds to wait for the PACS (default 15)")
    add_tls_arguments(parser)


def said_sent(result: SendResult) -> int:
    """A send's summary line (stdout) and its warnings and problems, one line each (stderr); the exit status they
    make (1 where a file was not sent)."""
    from zsmed.runtime.validate import escape_text

    print(escape_text(result.summary()))
    for warning in result.warnings:
        print(f"zsmed: warning: {escape_text(warning)}", file=sys.stderr)
    for problem in result.problems:
        print(f"zsmed: not sent: {escape_text(problem)}", file=sys.stderr)
    return 1 if result.problems else 0


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


def add_receive_arguments(parser: argparse.ArgumentParser) -> None:
    """What ``zsmed receive`` and ``zsmed serve`` listen with (the settings' by default)."""
    parser.add_argument("--into", type=Path, default=None, metavar="DIR", help="where studies arrive")
    parser.add_argument("--port", type=int, default=None, help="the port to listen on (default: the settings', "
                        "else 11112)")
    parser.add_argument("--ae", default="", metavar="AE", help="this workstation's AE title (default: the "
                        "settings', else ZSMED)")
    parser.add_argument("--allow", action="append", default=[], metavar="AE",
                        help="accept only this caller (repeatable; default: the settings', else any)")
    parser.add_argument("--bind", default="0.0.0.0", metavar="ADDRESS",
                        help="the address to listen on (default: every interface; 127.0.0.1: this PC only)")
    parser.add_argument("--seconds", type=float, default=None, metavar="S", help="stop after S seconds")
    add_tls_arguments(parser)


def receiver_config(args: argparse.Namespace, site: SiteConfig) -> ReceiverConfig:
    """How to listen: the command line's options, else the settings'."""
    from zsmed.dicom.receiver import ReceiverConfig, parse_callers

    configured = site.receiver_config()
    port = args.port if args.port is not None else (configured.port if configured is not None else 11112)
    callers = parse_callers(args.allow) if args.allow else (configured.allowed_callers if configured else ())
    return ReceiverConfig(args.into or site.resolved_receive_folder(), args.ae or site.pacs_calling_ae or "ZSMED",
                          port, args.bind, callers, tls_config(args, site))


def listen(config: ReceiverConfig, on_batch: Callable[[Batch], None], seconds: float | None,
           between: Callable[[], None] = lambda: None) -> None:
    """Receive until Ctrl+C (or ``seconds``), saying so first; ``between`` runs on this thread between waits
    (``zsmed serve`` classifies there what arrived)."""
    import sys
    import time

    from zsmed.dicom.receiver import Receiver
    from zsmed.runtime.validate import escape_text

    receiver = Receiver(config, on_batch)
    receiver.start()
    accepted = f"from {', '.join(config.allowed_callers)}" if config.allowed_callers else "from any caller"
    secured = " over TLS" if config.tls is not None else ""
    print(f"Receiving as {config.ae_title} on port {receiver.port}{secured} {accepted} into "
          f"{escape_text(config.folder)} (Ctrl+C stops)", file=sys.stdout, flush=True)
    try:
        deadline = time.monotonic() + seconds if seconds else None
        while deadline is None or time.monotonic() < deadline:
            between()
            time.sleep(0.2)
        between()  # what arrived in the last moments
    finally:
        receiver.stop()
