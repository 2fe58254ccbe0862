"""Reading whole DICOM files and decoding their pixels, with every failure a one-line zsmed error.

``open_dataset`` reads a file (``NotDicomError``, ``DicomReadError``, ``InputFileError``);
``stored_pixels`` decodes the stored values exactly as pydicom 3's ``Dataset.pixel_array`` returns
them (or one frame of them), working around the known traps:

* pydicom's GDCM plugin refuses 12-bit JPEG Extended: GDCM's own ``ImageReader`` decodes it;
* truncated encapsulated pixel data comes back from ``dcmread`` as a warning and no Pixel Data: that
  becomes ``PixelDecodeError``;
* pylibjpeg-rle raises a Rust ``PanicException`` (a ``BaseException``): the RLE data is retried with
  pydicom's own decoder, else ``DecoderCrashError``;
* no codec for the transfer syntax: ``UnsupportedTransferSyntaxError`` naming it.

This runs in-process (the fast path for training images). Untrusted files go through
``zsmed.dicom.safe``, which runs the same functions in a worker process.
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from zsmed.errors import (
    NO_IMAGE_IN_OBJECT,
    DecoderCrashError,
    DicomReadError,
    InputFileError,
    NoPixelDataError,
    NotDicomError,
    PixelDecodeError,
    UnsupportedTransferSyntaxError,
    ZsmedError,
    input_file_error,
    warning_text,
)

if TYPE_CHECKING:
    from pydicom.dataset import Dataset, FileDataset

log = logging.getLogger(__name__)

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# Ceilings checked from the header before any pixel is decoded: a few hundred crafted bytes can
# claim 30 million frames or a 40000 x 40000 colour image, and the codecs allocate what they are
# told. Real images stay far below (a mammogram ~25 MP, a long cine a few thousand frames).
MAX_FRAMES = 10_000
MAX_FRAME_PIXELS = 50_000_000
MAX_FRAME_BYTES = 256 << 20
MAX_DECODED_BYTES = 1 << 30
_TRUNCATION_HINTS = ("end of file reached", "truncated", "fewer than expected", "less than expected")


def one_line(exc: BaseException) -> str:
    """A one-line reason from an exception (first non-empty line, bounded length)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line[:300]
    return exc.__class__.__name__


def _warning_text(caught: warnings.WarningMessage) -> str:
    """One line for a recorded warning."""
    return warning_text(one_line(caught.message) if isinstance(caught.message, BaseException) else caught.message)


@contextmanager
def codec_output() -> Iterator[list[str]]:
    """Collect, instead of showing, what C codecs print on the process's stderr while decoding
    (libjpeg, OpenJPEG and GDCM write their complaints straight to file descriptor 2, in the middle of
    a progress bar and without a file name). The list is filled when the block ends."""
    lines: list[str] = []
    fd = 2  # where C libraries write, whatever Python's sys.stderr is at the time
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
        saved = os.dup(fd)
    except (OSError, ValueError):  # no file descriptor 2 (a windowed app): nothing to catch
        yield lines
        return
    try:
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), fd)
            try:
                yield lines
            finally:
                os.dup2(saved, fd)
                sink.seek(0)
                text = sink.read(64_000).decode("utf-8", "replace")
                lines.extend(line.strip() for line in text.splitlines() if line.strip())
    finally:
        os.close(saved)


# what pydicom raises when it converts a damaged value, which it does only when the value is first read: a
# truncated sequence (struct.error, EOFError), bytes that name no VR (NotImplementedError), a length past the end
DAMAGED_VALUE_ERRORS: tuple[type[BaseException], ...] = (
    struct.error, EOFError, NotImplementedError, ValueError, KeyError, TypeError, AttributeError, IndexError,
    OverflowError)


@contextmanager
def damaged_values(path: str | Path | None) -> Iterator[None]:
    """A value of a data set read from ``path`` that pydicom cannot convert, as a ``DicomReadError`` naming the
    file (the app and the command line say it in a line): for code that reads values after ``read_dataset``."""
    try:
        yield
    except ZsmedError:
        raise
    except DAMAGED_VALUE_ERRORS as exc:
        raise DicomReadError(f"a value in the file is damaged or cut short ({one_line(exc)[:200]})",
                             path=str(path) if path is not None else None) from exc


def _is_fatal(exc: BaseException) -> bool:
    return isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit)


def open_dataset(
    path: str | Path, *, stop_before_pixels: bool = False, defer_size: int | None = None
) -> tuple[FileDataset, list[str]]:
    """Read a DICOM file; return the data set and the read warnings (one line each).

    A file without the 128-byte preamble is read when it starts like a DICOM data set (old
    ACR-NEMA style files); anything else is ``NotDicomError``. With ``defer_size`` (bytes), values
    longer than that are skipped, not read: they stay ``RawDataElement``s whose value is None until
    someone asks for them (the tag browser lists a file's elements without loading its pixels).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    from zsmed.dicom.header import sniff_dataset_without_preamble

    path = str(path)
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fp:
            first = fp.read(132)
    except OSError as exc:
        raise input_file_error(path, exc) from exc
    if size == 0:
        raise NotDicomError("empty file (0 bytes)", path=path)
    has_preamble = len(first) >= 132 and first[128:132] == b"DICM"
    notes: list[str] = []
    if not has_preamble:
        if not sniff_dataset_without_preamble(first[:8]):
            raise NotDicomError(
                "not a DICOM file (no 'DICM' marker at byte 128 and no recognisable data set)", path=path
            )
        notes.append("no DICOM preamble/file meta; read as a bare data set")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = pydicom.dcmread(
                path, stop_before_pixels=stop_before_pixels, force=not has_preamble, defer_size=defer_size
            )
        except InvalidDicomError as exc:
            raise NotDicomError(f"not a DICOM file ({one_line(exc)})", path=path) from exc
        except MemoryError as exc:
            raise DicomReadError("header claims more memory than is available (bogus length?)", path=path) from exc
        except PermissionError as exc:
            raise InputFileError("permission denied", path=path) from exc
        except Exception as exc:
            raise DicomReadError(
                f"header unreadable ({exc.__class__.__name__}: {one_line(exc)[:200]})", path=path
            ) from exc
    notes.extend(_warning_text(w) for w in caught)
    if not has_preamble and len(ds) == 0:
        raise NotDicomError("not a DICOM file (no data elements)", path=path)
    return ds, notes


def read_dataset(path: str | Path, *, stop_before_pixels: bool = False) -> FileDataset:
    return open_dataset(path, stop_before_pixels=stop_before_pixels)[0]


def number_of_frames(ds: Dataset) -> int:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a malformed value ('1A') counts as one frame, said once below
            value = ds.get("NumberOfFrames", 1)
        frames = int(float(str(value))) if value not in (None, "") else 1
    except (TypeError, ValueError):
        frames = 1
    return max(frames, 1)


def transfer_syntax(ds: Dataset) -> str | None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        return None
    value = meta.get("TransferSyntaxUID")
    return str(value) if value else None


def has_pixels(ds: Dataset) -> bool:
    return any(keyword in ds for keyword in PIXEL_KEYWORDS)


def is_dicomdir(ds: Dataset) -> bool:
    """A DICOMDIR (a CD's index of its images), not an object of its own: by its media storage SOP class, or
    its directory records where the file meta is missing."""
    from zsmed.dicom.header import MEDIA_STORAGE_DIRECTORY

    meta = getattr(ds, "file_meta", None)
    sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "").strip() if meta is not None else ""
    return sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds


def _sop_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", None)
    if uid is None:
        return "DICOM"
    name = getattr(uid, "name", str(uid))
    return str(name)


def check_decodable(ds: Dataset, path: str | None = None, notes: list[str] | None = None) -> str:
    """Raise the right error when pixels cannot be decoded; return the transfer syntax UID."""
    from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if not has_pixels(ds):
        truncated = [n for n in notes or [] if any(h in n.lower() for h in _TRUNCATION_HINTS)]
        if truncated:
            raise PixelDecodeError(f"pixel data truncated ({truncated[0]})", path=path)
        sop = _sop_name(ds)
        if "image storage" in sop.lower():
            # An image object whose header reads cleanly but stops short is an interrupted copy
            # (USB stick pulled, disk full); "no image" would send the reader looking for a report.
            size = f" after {os.path.getsize(path)} bytes" if path and os.path.isfile(path) else ""
            raise PixelDecodeError(f"{sop} without its pixel data: the file ends{size} before the image "
                                   "(truncated or incomplete copy)", path=path)
        raise NoPixelDataError(f"{NO_IMAGE_IN_OBJECT} ({sop})", path=path)
    ts = transfer_syntax(ds)
    if ts is None:
        # A bare data set (no file meta): take the encoding it was read with.
        elem = ds.get("PixelData")
        if elem is not None and getattr(ds["PixelData"], "is_undefined_length", False):
            raise PixelDecodeError("compressed pixel data but no transfer syntax in the file", path=path)
        implicit = getattr(ds, "is_implicit_VR", None)
        little = getattr(ds, "is_little_endian", True)
        ts = ImplicitVRLittleEndian if implicit else (ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        if not hasattr(ds, "file_meta") or ds.file_meta is None:
            from pydicom.dataset import FileMetaDataset

            ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ts
    uid = UID(ts)
    if not uid.is_transfer_syntax:
        raise UnsupportedTransferSyntaxError(f"unknown transfer syntax {ts}", path=path)
    if uid.is_compressed:
        from pydicom.pixels import get_decoder

        try:
            decoder = get_decoder(uid)
        except NotImplementedError as exc:
            raise UnsupportedTransferSyntaxError(
                f"no decoder exists for transfer syntax {uid.name} ({ts})", path=path
            ) from exc
        if not decoder.is_available:
            raise UnsupportedTransferSyntaxError(
                f"no installed codec decodes transfer syntax {uid.name} ({ts})", path=path
            )
    else:
        _check_native_length(ds, path)
    return str(ts)


def check_decoded_size(ds: Dataset, frame: int | None, path: str | None = None) -> None:
    """Refuse, from the header alone, an image whose decoding would allocate more than the
    ceilings above (``frame`` None: all frames at once)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows, columns = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
            samples = int(ds.get("SamplesPerPixel", 1) or 1)
            bits = int(ds.get("BitsAllocated", 8) or 8)
    except (TypeError, ValueError) as exc:
        raise PixelDecodeError(f"image description is malformed ({one_line(exc)[:160]})", path=path) from exc
    frames = number_of_frames(ds)
    if frames > MAX_FRAMES:
        raise PixelDecodeError(f"the header claims {frames} frames; zsmed reads at most {MAX_FRAMES}", path=path)
    if min(rows, columns, samples, bits) < 0:
        raise PixelDecodeError("the header gives a negative image dimension", path=path)
    pixels = rows * columns
    per_frame = pixels * samples * max(1, (bits + 7) // 8)
    if pixels > MAX_FRAME_PIXELS or per_frame > MAX_FRAME_BYTES:
        raise PixelDecodeError(
            f"the header claims a {columns} x {rows} image with {samples} sample(s) of {bits} bits "
            f"({per_frame / 1e6:.0f} MB a frame); zsmed decodes at most {MAX_FRAME_PIXELS / 1e6:.0f} megapixels "
            f"and {MAX_FRAME_BYTES >> 20} MB a frame", path=path)
    if frame is None and per_frame * frames > MAX_DECODED_BYTES:
        raise PixelDecodeError(
            f"the header claims {frames} frames of {per_frame / 1e6:.0f} MB ({per_frame * frames / 1e9:.1f} GB); "
            f"zsmed decodes at most {MAX_DECODED_BYTES >> 20} MB at once", path=path)


def _check_native_length(ds: Dataset, path: str | None) -> None:
    from pydicom.pixels.utils import get_expected_length

    for keyword in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(keyword):
            raise PixelDecodeError(f"{keyword} is missing or zero", path=path)
    bits = int(ds.BitsAllocated)
    if "PixelData" in ds and bits not in (1, 8, 16, 32, 64):
        raise PixelDecodeError(f"BitsAllocated {bits} is not valid for pixel data", path=path)
    stored = ds.get("BitsStored")
    if stored is not None and not 0 < int(stored) <= bits:
        raise PixelDecodeError(f"BitsStored {stored} does not fit BitsAllocated {bits}", path=path)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3, 4):
        raise PixelDecodeError(f"SamplesPerPixel {samples} is not supported", path=path)
    keyword = next(k for k in PIXEL_KEYWORDS if k in ds)
    actual = len(ds[keyword].value or b"")
    try:
        expected = int(get_expected_length(ds, unit="bytes"))
    except Exception as exc:
        raise PixelDecodeError(f"image description is inconsistent ({one_line(exc)[:160]})", path=path) from exc
    if actual < expected:
        raise PixelDecodeError(
            f"pixel data is {actual} bytes but Rows x Columns x Frames x Samples x BitsAllocated needs "
            f"{expected} (truncated file or wrong BitsAllocated/NumberOfFrames)",
            path=path,
        )
    if expected > 0 and actual >= 2 * expected and bits > 1:
        raise PixelDecodeError(
            f"pixel data is {actual} bytes, at least twice the {expected} the header describes "
            f"(wrong BitsAllocated or NumberOfFrames)",
            path=path,
        )


def _pydicom_pixels(ds: Dataset, frame: int | None, plugin: str = "") -> np.ndarray:
    from pydicom.pixels import pixel_array

    opts: dict[str, Any] = dict(getattr(ds, "_pixel_array_opts", {}) or {})
    opts.pop("use_pdh", None)
    if plugin:
        opts["decoding_plugin"] = plugin
    if frame is not None:
        opts["index"] = frame
    return pixel_array(ds, **opts)


def _gdcm_pixels(path: str, ds: Dataset, frame: int | None) -> np.ndarray:
    """Decode with GDCM's own image reader (it handles 12-bit JPEG Extended pydicom refuses)."""
    import gdcm
    from pydicom.pixels.utils import pixel_dtype, reshape_pixel_array

    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise PixelDecodeError("GDCM could not read the image", path=path)
    image = reader.GetImage()
    buffer = image.GetBuffer()
    if buffer is None:  # GDCM read the header but could not decode the pixel data (a damaged stream)
        raise PixelDecodeError("GDCM could not decode the pixel data (damaged or truncated)", path=path)
    raw = buffer.encode("utf-8", "surrogateescape")
    fmt = image.GetPixelFormat()
    scalar = fmt.GetScalarTypeAsString()
    gdcm_dtype = {
        "UINT8": np.uint8,
        "INT8": np.int8,
        "UINT16": np.uint16,
        "INT16": np.int16,
        "UINT32": np.uint32,
        "INT32": np.int32,
        "UINT12": np.uint16,
        "INT12": np.int16,
    }.get(scalar)
    if gdcm_dtype is None:
        raise PixelDecodeError(f"GDCM returned pixels of type {scalar}", path=path)
    arr = np.frombuffer(raw, dtype=gdcm_dtype)
    want = pixel_dtype(ds)
    arr = arr.astype(want, copy=False)
    frames = number_of_frames(ds)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    expected = frames * int(ds.Rows) * int(ds.Columns) * samples
    if arr.size < expected:
        raise PixelDecodeError(f"GDCM returned {arr.size} samples, expected {expected}", path=path)
    arr = arr[:expected]
    if samples > 1:
        # GDCM returns pixel-interleaved samples.
        shape: tuple[int, ...] = (frames, int(ds.Rows), int(ds.Columns), samples)
        arr = arr.reshape(shape)
        if frames == 1:
            arr = arr[0]
    else:
        arr = reshape_pixel_array(ds, arr)
    if frame is not None and frames > 1:
        arr = arr[frame]
    return np.ascontiguousarray(arr)


def _check_frame(ds: Dataset, frame: int | None, path: str | None) -> None:
    if frame is None:
        return
    frames = number_of_frames(ds)
    if not 0 <= frame < frames:
        raise PixelDecodeError(f"frame {frame} does not exist (the image has {frames} frame(s))", path=path)


def stored_pixels(
    ds: Dataset, *, frame: int | None = None, path: str | Path | None = None, notes: list[str] | None = None
) -> np.ndarray:
    """The stored values exactly as ``Dataset.pixel_array`` returns them; one frame if ``frame``.

    Colour data comes back as pydicom gives it by default: YBR converted to RGB, palette colour as
    indices. ``frame`` selects one frame (decoding only that frame where the codec allows).
    """
    from pydicom.uid import JPEGExtended12Bit, JPEGTransferSyntaxes, RLELossless

    spath = str(path) if path is not None else None
    check_decoded_size(ds, frame if number_of_frames(ds) > 1 else None, spath)  # before anything is allocated
    ts = check_decodable(ds, spath, notes)
    _check_frame(ds, frame, spath)
    single = frame if number_of_frames(ds) > 1 else None
    errors: list[str] = []
    crashed, first_error = False, None
    with codec_output() as codec_lines, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            arr = _pydicom_pixels(ds, single)
        except BaseException as exc:
            if _is_fatal(exc):
                raise
            errors.append(_all_lines(exc))
            arr, first_error = None, exc
            crashed = not isinstance(exc, Exception)
            if ts == RLELossless:
                try:
                    arr = _pydicom_pixels(ds, single, plugin="pydicom")
                except BaseException as exc2:
                    if _is_fatal(exc2):
                        raise
                    errors.append(one_line(exc2))
            elif ts in JPEGTransferSyntaxes and spath is not None and ts == JPEGExtended12Bit:
                try:
                    arr = _gdcm_pixels(spath, ds, single)
                except ZsmedError as exc2:
                    errors.append(exc2.reason)
    if arr is None:
        # what the C codecs printed is often the only precise reason ("Unsupported JPEG data precision 12")
        reason = "; ".join(dict.fromkeys([*errors, *codec_lines]))
        if crashed:
            raise DecoderCrashError(
                f"the codec crashed ({first_error.__class__.__name__}: {reason})", path=spath
            ) from None
        raise PixelDecodeError(_decode_reason(reason, ts), path=spath) from first_error
    if codec_lines:
        log.debug("%s: the codec said %s", spath, "; ".join(codec_lines))
    assert arr is not None
    for w in caught:
        text = str(w.message)
        if any(h in text.lower() for h in _TRUNCATION_HINTS):
            raise PixelDecodeError(f"pixel data truncated ({text.splitlines()[0][:200]})", path=spath)
    if frame is not None and single is None and arr.ndim >= 2 and number_of_frames(ds) > 1:
        arr = arr[frame]
    return arr


def _all_lines(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Unable to decode as exceptions were raised")]
    return "; ".join(lines)[:300] or exc.__class__.__name__


def _decode_reason(reason: str, ts: str) -> str:
    from pydicom.uid import UID

    name = UID(ts).name
    reason = reason.replace("Unable to decode as exceptions were raised by all available plugins:", "").strip()
    return f"cannot decode {name} pixel data: {reason}"[:400]


def load_dataset_and_pixels(path: str | Path, frame: int | None = None) -> tuple[FileDataset, np.ndarray]:
    """Read a file and decode its stored pixels (all frames, or one)."""
    ds, notes = open_dataset(path)
    return ds, stored_pixels(ds, frame=frame, path=path, notes=notes)


def load_model_image(path: str | Path, frame: int = 0) -> np.ndarray:
    """A DICOM image for a model: float32 in [0, 1], grey (H, W) or RGB (H, W, 3).

    Display semantics are applied (modality LUT/rescale, the file's VOI LUT or first window, else a
    robust percentile window; MONOCHROME1 inverted; YBR and palette colour converted to RGB).
    """
    ds, notes = open_dataset(path)
    return model_image_from_dataset(ds, frame, path=path, notes=notes)


def model_image_from_dataset(ds: Dataset, frame: int = 0, *, path: str | Path | None = None,
                             notes: list[str] | None = None) -> np.ndarray:
    """``load_model_image`` on a data set already read: the frames of a multi-frame file can then be
    decoded one by one from a single read of the file."""
    from zsmed.dicom.display import render

    has_frames = number_of_frames(ds) > 1
    arr = stored_pixels(ds, frame=frame if has_frames else None, path=path, notes=notes)
    if not has_frames and frame not in (0, None):
        raise PixelDecodeError(f"frame {frame} does not exist (the image has 1 frame)", path=path)
    # pydicom warns when it converts a malformed element on first use (window values, rescale ...);
    # the image is still made, so those go to the log, not in the middle of a progress bar
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        image = render(arr, ds, frame=frame if has_frames else 0)
    for w in caught:
        log.debug("%s: %s", path, _warning_text(w))
    return image
