"""``zsmed encoders list`` and ``zsmed encode DIR --encoder NAME --out FEATURES.npz``.

Listing loads no weights and no torch, so it answers instantly; ``--load`` really creates each
encoder to prove the installation. ``encode`` goes through the feature cache, so a second run on
the same folder only hashes files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from zsmed.errors import DatasetError, InputFileError, UnknownEncoderError, ZsmedError
from zsmed.log import get_logger

log = get_logger(__name__)


def register(groups: Any) -> None:
    encoders = groups.top.add_parser("encoders", help="image and text encoders available on this machine")
    sub = encoders.add_subparsers(dest="encoders_command", metavar="WHAT", required=True)
    listing = sub.add_parser("list", help="names, kind, dimension, and whether each can run here")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument("--load", action="store_true", help="load each encoder to prove it works (slower)")
    listing.set_defaults(handler=cmd_encoders_list)

    encode = groups.top.add_parser(
        "encode",
        help="encode a folder of images into a features .npz",
        description="Encode a class folder (one subfolder per class) or a flat folder of images. "
        "Files that cannot be decoded are named with the reason and skipped.",
    )
    encode.add_argument("folder", type=Path, metavar="DIR")
    encode.add_argument("--encoder", default=None, help="image encoder name (default: efficientnet-lite0)")
    encode.add_argument("--out", type=Path, required=True, metavar="FEATURES.npz")
    encode.add_argument("--batch-size", type=int, default=32)
    encode.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    encode.add_argument("--cache-file", type=Path, default=None, help="feature cache file (default: user cache)")
    encode.add_argument("--json", action="store_true", help="print a JSON summary")
    encode.set_defaults(handler=cmd_encode)


# --- zsmed encoders list ---------------------------------------------------------------------------
def _load_check(name: str) -> tuple[int | None, str]:
    from zsmed.encoders import create_encoder

    try:
        return create_encoder(name).dim, ""
    except ZsmedError as exc:
        return None, str(exc)


def cmd_encoders_list(args: argparse.Namespace) -> int:
    from zsmed.encoders import describe_encoders

    rows: list[dict[str, Any]] = []
    for info in describe_encoders():
        row = info.to_dict()
        if args.load and info.available and not info.is_prefix:
            dim, problem = _load_check(info.name)
            row.update(available=problem == "", reason=problem, dim=dim if dim is not None else info.dim)
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(_display_name(row)) for row in rows) + 2
    print(f"{'NAME':<{width}}{'KIND':<7}{'DIM':>5}  STATUS")
    for row in rows:
        dim_text = str(row["dim"]) if row["dim"] else "-"
        status = "available" if row["available"] else "unavailable"
        if row["reason"]:
            status += f": {row['reason']}"
        print(f"{_display_name(row):<{width}}{row['kind']:<7}{dim_text:>5}  {status}")
    return 0


def _display_name(row: dict[str, Any]) -> str:
    name = str(row["name"])
    if row["is_prefix"]:
        name += "<folder>" if name.startswith("hf-local") else "<model>@<file>"
    return name + (" *" if row["is_default"] else "")


# --- zsmed encode ------------------------------------------------------------------------------------
def collect_images(folder: Path) -> tuple[list[Path], list[str], int]:
    """Images of a class folder (label = subfolder) or of a flat folder (label ''), and the number of
    top-level images ignored because the folder has class subfolders."""
    from zsmed.imageio import is_candidate_image, iter_candidate_images

    if not folder.is_dir():
        raise InputFileError("not a folder", path=folder)
    top = sorted(p for p in folder.iterdir() if p.is_file() and is_candidate_image(p))
    subdirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    has_classes = any(next(iter_candidate_images(sub), None) is not None for sub in subdirs)
    if has_classes:
        from zsmed.data.folders import load_class_folder

        items = load_class_folder(folder).items
        return [item.path for item in items], [item.label for item in items], len(top)
    if not top:
        raise DatasetError("holds no images (and no class subfolders with images)", path=folder)
    return top, [""] * len(top), 0


def _open_cache(args: argparse.Namespace) -> Any:
    if args.no_cache:
        return None
    from zsmed.features import FeatureCache

    try:
        return FeatureCache(args.cache_file)
    except ZsmedError as exc:
        print(f"zsmed: warning: encoding without the feature cache: {exc}", file=sys.stderr)
        return None


def _write_npz(out: Path, arrays: dict[str, Any]) -> None:
    import numpy as np

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        # A file handle, not a name: np.savez would append '.npz' to other suffixes.
        with partial.open("wb") as handle:
            np.savez(handle, **arrays)
        os.replace(partial, out)  # readers never see a half-written file
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputFileError(f"cannot write the features file ({exc.strerror or exc})", path=out) from exc


def cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    from zsmed.encoders import DEFAULT_IMAGE_ENCODER, ImageEncoder, registered_kind, shared_encoder
    from zsmed.features import encode_files
    from zsmed.progress import run_with_bar

    if args.batch_size < 1:
        raise DatasetError("--batch-size must be at least 1")
    folder: Path = args.folder
    paths, labels, ignored = collect_images(folder)
    name = args.encoder or DEFAULT_IMAGE_ENCODER
    if registered_kind(name) == "text":
        raise UnknownEncoderError(f"'{name}' is a text encoder; 'zsmed encode' needs an image encoder")
    # Shared: the desktop app and tests call this in-process, and weights load only once.
    encoder = shared_encoder(name)
    if not isinstance(encoder, ImageEncoder):
        raise UnknownEncoderError(f"'{name}' is not an image encoder")
    cache = _open_cache(args)
    started = time.perf_counter()
    try:
        result = run_with_bar(
            encode_files(paths, encoder, cache, batch_size=args.batch_size), f"encoding ({encoder.spec.name})"
        )
    finally:
        if cache is not None:
            cache.close()
    seconds = time.perf_counter() - started
    label_of = {path: label for path, label in zip(paths, labels, strict=True)}
    arrays = {
        "features": result.features.astype(np.float32, copy=False),
        "paths": np.array([str(p.resolve()) for p in result.paths], dtype=np.str_),
        "labels": np.array([label_of[p] for p in result.paths], dtype=np.str_),
        "failed_paths": np.array([str(p.resolve()) for p, _ in result.failures], dtype=np.str_),
        "failed_reasons": np.array([reason for _, reason in result.failures], dtype=np.str_),
        "encoder": np.array(json.dumps(encoder.spec.to_dict())),
        "cache_id": np.array(encoder.spec.cache_id),
    }
    _write_npz(args.out, arrays)
    classes = sorted(set(labels) - {""})
    summary: dict[str, Any] = {
        "out": str(args.out),
        "encoder": encoder.spec.name,
        "dim": encoder.dim,
        "images": len(paths),
        "encoded": len(result.paths),
        "from_cache": result.cache_hits,
        "failed": [{"file": str(p), "reason": reason} for p, reason in result.failures],
        "ignored_top_level": ignored,
        "classes": classes,
        "seconds": round(seconds, 3),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for path, reason in result.failures:
            print(f"zsmed: skipped {path}: {reason}", file=sys.stderr)
        if ignored:
            print(f"zsmed: note: {ignored} image(s) at the top of {folder} are in no class subfolder; ignored",
                  file=sys.stderr)
        in_classes = f" in {len(classes)} classes" if classes else ""
        print(
            f"encoded {len(result.paths)} of {len(paths)} images{in_classes} with {encoder.spec.name} "
            f"({encoder.dim}-d; {result.cache_hits} from cache, {len(result.failures)} failed) "
            f"in {seconds:.1f} s -> {args.out}"
        )
    return 0 if result.paths or not paths else 1
