"""Text burned into the pixels, found by OCR: where a de-identified copy must be blanked, and a check of an
export before it leaves the hospital.

Ultrasound machines, capture stations and cameras print the patient's name, ID, dates and the hospital into
the image; a sonographer types labels ("LYMPH NODE") over the scan itself. ``zsmed.dicom.burned_in`` blanks
areas the reader names; this module finds the words so that they can be blanked where they are, and so
that an export can be checked for any left.

The OCR engine is Tesseract (Apache-2.0), run as its command-line program on the machine (Debian / Ubuntu:
``apt-get install tesseract-ocr``; elsewhere Tesseract's own installer, on the PATH): no network, no model
download. The image goes to it through a pipe, never through a temporary file, so no copy of an identifiable
image is left on the disk.
Each image is shown to it as the viewer shows it (grey, the file's window), enlarged twice where it is
small, because an ultrasound machine's 10-pixel letters are below what Tesseract reads reliably.

OCR misses text (stylised fonts, text over bright speckle) and finds some where there is none (speckle
read as "PUR"): blanking what it finds is a help, not a guarantee, and the reader is told to check the
images; words are kept from a confidence of ``MIN_CONFIDENCE`` and at least two letters or digits.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from zsmed.dicom.burned_in import Box
from zsmed.errors import DicomReadError, OcrUnavailableError, ZsmedError
from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

OCR_PROGRAM = "tesseract"
MIN_CONFIDENCE = 70.0  # Tesseract's word confidence (0-100): below it, speckle and ruler ticks read as words
# Around an ultrasound's scan regions there is nothing to lose but text: a lower bar there catches the machine's
# codes and IDs that Tesseract reads less surely (on pydicom's US1: "630P630", "44CG43" at 40-55)
MIN_CONFIDENCE_OUTSIDE_SCAN = 40.0
MIN_CHARACTERS = 2  # letters or digits in a word: single marks are rarely an identifier and often speckle
ENLARGE_BELOW = 1000  # pixels on the shorter side: smaller images are read at twice their size
PAD = 2  # pixels added around each word's box when it is blanked (anti-aliased letter edges)
OCR_TIMEOUT_S = 120.0
INSTALL_HINT = ("install Tesseract (Debian / Ubuntu: apt-get install tesseract-ocr; Windows and macOS: Tesseract's "
                "own installer, with its folder on the PATH)")


@dataclass(frozen=True)
class FoundText:
    """A word found in an image: its box (pixels of the image, not of the enlarged copy), what was read and
    Tesseract's confidence (0-100)."""

    box: Box
    text: str
    confidence: float


def ocr_program() -> str | None:
    """The Tesseract program's path, or None where it is not installed."""
    return shutil.which(OCR_PROGRAM)


def require_ocr() -> str:
    """The Tesseract program's path; ``OcrUnavailableError`` (one line, with what to install) where it is not."""
    program = ocr_program()
    if program is None:
        raise OcrUnavailableError(f"text in the pixels cannot be looked for: the OCR program ({OCR_PROGRAM}) is not "
                                  f"installed; {INSTALL_HINT}")
    return program


def grey_uint8(image: np.ndarray) -> np.ndarray:
    """A display image (grey (H, W) or RGB (H, W, 3), uint8 or float in [0, 1]) as grey uint8 (luma)."""
    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.rint(array.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    if array.ndim == 3:
        weights = np.asarray([0.299, 0.587, 0.114], dtype=np.float32)
        array = np.clip(np.rint(array[..., :3].astype(np.float32) @ weights), 0, 255).astype(np.uint8)
    return array


def parse_words(tsv: str, scale: float, min_confidence: float = MIN_CONFIDENCE) -> list[FoundText]:
    """Tesseract's TSV output as the words kept (``min_confidence``, ``MIN_CHARACTERS``), boxes divided by
    ``scale`` (the enlargement) back into the image's pixels."""
    found = []
    for line in tsv.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) != 12 or fields[0] != "5":  # level 5: a word
            continue
        text = fields[11].strip()
        try:
            confidence = float(fields[10])
            left, top, width, height = (int(v) for v in fields[6:10])
        except ValueError:
            continue
        if confidence < min_confidence or sum(ch.isalnum() for ch in text) < MIN_CHARACTERS:
            continue
        x0, y0 = int(np.floor(left / scale)), int(np.floor(top / scale))
        x1, y1 = int(np.ceil((left + width) / scale)), int(np.ceil((top + height) / scale))
        found.append(FoundText(Box(x0, y0, max(1, x1 - x0), max(1, y1 - y0)), text, round(confidence, 1)))
    return found


def find_text(image: np.ndarray, min_confidence: float = MIN_CONFIDENCE) -> list[FoundText]:
    """The words Tesseract reads in a display image (grey or RGB) from ``min_confidence``, in its order."""
    from PIL import Image

    program = require_ocr()
    grey = grey_uint8(image)
    if grey.ndim != 2 or min(grey.shape) < 8:
        return []
    picture = Image.fromarray(grey)
    scale = 2.0 if min(grey.shape) < ENLARGE_BELOW else 1.0
    if scale != 1.0:
        picture = picture.resize((grey.shape[1] * 2, grey.shape[0] * 2), Image.Resampling.BICUBIC)
    png = io.BytesIO()
    picture.save(png, format="PNG")
    try:
        # --psm 11: sparse text, in no particular order (an ultrasound's labels are scattered, not a page)
        run = subprocess.run([program, "stdin", "stdout", "--psm", "11", "tsv"], input=png.getvalue(),
                             capture_output=True, timeout=OCR_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise OcrUnavailableError(f"the OCR program ({program}) could not read the image: {exc}") from None
    if run.returncode != 0:
        detail = run.stderr.decode("utf-8", "replace").strip().splitlines()
        raise OcrUnavailableError(f"the OCR program ({program}) failed: {detail[-1] if detail else run.returncode}")
    return parse_words(run.stdout.decode("utf-8", "replace"), scale, min_confidence)


def frames_to_read(count: int) -> list[int]:
    """Which frames of a multi-frame image are read: the first, the middle and the last (a cine's burned-in
    header stays where it is; a clock that changes is in the same place on each)."""
    return sorted({0, count // 2, count - 1}) if count > 1 else [0]


def outside_scan(word: FoundText, scan: tuple[int, int, int, int] | None) -> bool:
    """Whether a word's middle lies outside an ultrasound's scan regions (``region_bounds``: left, top, right,
    bottom, inclusive); never where there are none."""
    if scan is None:
        return False
    left, top, right, bottom = scan
    x, y = word.box.left + word.box.width / 2.0, word.box.top + word.box.height / 2.0
    return not (left <= x <= right + 1 and top <= y <= bottom + 1)


def find_text_in_dataset(ds: Dataset, *, path: str | Path | None = None) -> list[FoundText]:
    """The words found in ``ds``'s image as the viewer shows it (its first window), over ``frames_to_read``:
    from ``MIN_CONFIDENCE``, or ``MIN_CONFIDENCE_OUTSIDE_SCAN`` around an ultrasound's scan regions (where they
    fit its image); ``DicomReadError`` naming the file where its pixels cannot be decoded."""
    from zsmed.dicom.decode import number_of_frames, stored_pixels
    from zsmed.dicom.display import render
    from zsmed.dicom.ultrasound import region_bounds, regions_fit

    spath = str(path) if path is not None else None
    scan = region_bounds(ds) if regions_fit(ds) else None
    lowest = MIN_CONFIDENCE_OUTSIDE_SCAN if scan is not None else MIN_CONFIDENCE
    found: list[FoundText] = []
    for frame in frames_to_read(number_of_frames(ds)):
        try:
            pixels = stored_pixels(ds, frame=frame if number_of_frames(ds) > 1 else None, path=spath)
            image = render(pixels, ds, frame=frame)
        except ZsmedError as exc:
            raise DicomReadError(f"its pixels could not be decoded to look for burned-in text ({exc.reason})",
                                 path=spath) from None
        found.extend(word for word in find_text(image, lowest)
                     if word.confidence >= MIN_CONFIDENCE or outside_scan(word, scan))
    return found


def boxes_to_blank(found: Sequence[FoundText], rows: int, columns: int, pad: int = PAD) -> list[Box]:
    """The found words' boxes, each grown by ``pad`` pixels and kept on an image of ``rows`` x ``columns``;
    the same box found on several frames is blanked once."""
    boxes: list[Box] = []
    for word in found:
        left, top = max(0, word.box.left - pad), max(0, word.box.top - pad)
        grown = Box(left, top, word.box.left + word.box.width + pad - left, word.box.top + word.box.height + pad - top)
        kept = grown.clipped(rows, columns)
        if kept is not None and kept not in boxes:
            boxes.append(kept)
    return boxes


OCR_PASSES = 3  # blanked words change what Tesseract segments: it is asked again until it finds none


def blank_found_text(ds: Dataset, *, path: str | Path | None = None, passes: int = OCR_PASSES) -> list[FoundText]:
    """Blank, in place, the words found in ``ds`` (each box grown by ``PAD``, on every frame,
    ``zsmed.dicom.burned_in.blank_dataset``), then look again, up to ``passes`` times: with the first words
    gone, Tesseract reads words beside them that it took for part of a picture. Returns every word blanked."""
    from zsmed.dicom.burned_in import blank_dataset

    blanked: list[FoundText] = []
    for _ in range(passes):
        words = find_text_in_dataset(ds, path=path)
        boxes = boxes_to_blank(words, int(ds.Rows), int(ds.Columns))
        if not boxes:
            break
        blank_dataset(ds, boxes, path=path)
        blanked.extend(words)
    return blanked


PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class TextCheck:
    """One file looked at by ``find_text_job``: the words found, or why it could not be looked at; a DICOM
    object without an image (a report) is ``skipped``."""

    path: str
    found: list[FoundText]
    problem: str | None = None
    skipped: bool = False


def find_text_in_file(path: str | Path) -> TextCheck:
    """The words found in one DICOM image or photo (PNG / JPEG); a problem (one line) where it cannot be read."""
    from zsmed.dicom.decode import damaged_values, has_pixels, open_dataset

    spath = str(path)
    try:
        if spath.lower().endswith(PHOTO_SUFFIXES):
            from zsmed.imageio import read_photo

            return TextCheck(spath, find_text(read_photo(spath)))
        ds, _notes = open_dataset(spath)
        if not has_pixels(ds):
            return TextCheck(spath, [], skipped=True)
        with damaged_values(spath):  # pydicom converts a value when it is first read: a damaged one here
            return TextCheck(spath, find_text_in_dataset(ds, path=spath))
    except OcrUnavailableError:
        raise  # not the file's fault: the whole check stops, said once
    except ZsmedError as exc:
        return TextCheck(spath, [], problem=exc.reason)


def find_text_job(paths: Sequence[str | Path]) -> Job[list[TextCheck]]:
    """Look for burned-in text in each file (folders expanded by the caller); yields ``Progress`` after each
    file, so it can be cancelled between files; ``OcrUnavailableError`` before the first where Tesseract is
    not installed."""
    require_ocr()
    checks: list[TextCheck] = []
    yield Progress(0, len(paths), "")
    for index, path in enumerate(paths):
        checks.append(find_text_in_file(path))
        yield Progress(index + 1, len(paths), Path(path).name)
    return checks


def describe_found(found: Sequence[FoundText], limit: int = 8) -> str:
    """'7 words: "BAPTIST", "MED", ...' (the first ``limit``), for a one-line report."""
    words = [f'"{word.text}"' for word in found[:limit]]
    more = ", ..." if len(found) > limit else ""
    return f"{len(found)} word{'s' if len(found) != 1 else ''}: {', '.join(words)}{more}"


__all__ = [
    "MIN_CONFIDENCE",
    "MIN_CONFIDENCE_OUTSIDE_SCAN",
    "OCR_PASSES",
    "FoundText",
    "TextCheck",
    "blank_found_text",
    "boxes_to_blank",
    "describe_found",
    "find_text",
    "find_text_in_dataset",
    "find_text_in_file",
    "find_text_job",
    "frames_to_read",
    "ocr_program",
    "outside_scan",
    "parse_words",
    "require_ocr",
]
