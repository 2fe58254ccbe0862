"""Fast header reads for scanning: the few attributes an index needs, without parsing the rest.

``read_header(path)`` returns a ``Header`` (a flat dict of keyword → Python value plus the transfer
syntax) for the index. The common case (preamble, file meta, explicit or implicit VR little endian)
goes through a small struct parser that reads the first few kilobytes, skips values it does not
need and stops at the first tag past group 0028's image description: a 500 MB file costs the same as
a 50 kB one. Anything unusual (no preamble, big endian, deflate, a structure the small parser does
not accept) falls back to pydicom with ``stop_before_pixels`` and ``specific_tags``, with guards
against pathological files (zero runs read as endless empty elements, decompression bombs).

Errors are zsmed errors with one-line reasons: ``NotDicomError``, ``DicomReadError``,
``InputFileError``.
"""

from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from zsmed.errors import DicomReadError, InputFileError, NotDicomError, input_file_error

# keyword -> (group, element, kind); kind says how to decode the value bytes.
SCAN_TAGS: dict[str, tuple[int, int, str]] = {
    "SpecificCharacterSet": (0x0008, 0x0005, "text"),
    "ImageType": (0x0008, 0x0008, "text"),
    "SOPClassUID": (0x0008, 0x0016, "uid"),
    "SOPInstanceUID": (0x0008, 0x0018, "uid"),
    "StudyDate": (0x0008, 0x0020, "text"),
    "SeriesDate": (0x0008, 0x0021, "text"),
    "StudyTime": (0x0008, 0x0030, "text"),
    "AccessionNumber": (0x0008, 0x0050, "text"),
    "Modality": (0x0008, 0x0060, "text"),
    "StudyDescription": (0x0008, 0x1030, "text"),
    "SeriesDescription": (0x0008, 0x103E, "text"),
    "PatientName": (0x0010, 0x0010, "text"),
    "PatientID": (0x0010, 0x0020, "text"),
    "PatientBirthDate": (0x0010, 0x0030, "text"),
    "PatientSex": (0x0010, 0x0040, "text"),
    "BodyPartExamined": (0x0018, 0x0015, "text"),
    "StudyInstanceUID": (0x0020, 0x000D, "uid"),
    "SeriesInstanceUID": (0x0020, 0x000E, "uid"),
    "StudyID": (0x0020, 0x0010, "text"),
    "SeriesNumber": (0x0020, 0x0011, "int"),
    "InstanceNumber": (0x0020, 0x0013, "int"),
    "ImagePositionPatient": (0x0020, 0x0032, "floats"),
    "ImageOrientationPatient": (0x0020, 0x0037, "floats"),
    "SliceLocation": (0x0020, 0x1041, "float"),
    "SamplesPerPixel": (0x0028, 0x0002, "us"),
    "PhotometricInterpretation": (0x0028, 0x0004, "text"),
    "NumberOfFrames": (0x0028, 0x0008, "int"),
    "Rows": (0x0028, 0x0010, "us"),
    "Columns": (0x0028, 0x0011, "us"),
    "BitsAllocated": (0x0028, 0x0100, "us"),
    "BitsStored": (0x0028, 0x0101, "us"),
    "PixelRepresentation": (0x0028, 0x0103, "us"),
}
_BY_TAG: dict[int, tuple[str, str]] = {(g << 16) | e: (kw, kind) for kw, (g, e, kind) in SCAN_TAGS.items()}
_STOP_TAG = (0x0028 << 16) | 0x0103  # nothing we need lies beyond
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_MAX_DEPTH = 32
_CHUNK = 16384

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"


@dataclass
class Header:
    """What a header-only read found. ``values`` maps ``SCAN_TAGS`` keywords to Python values."""

    path: str
    transfer_syntax: str | None
    media_sop_class: str | None
    values: dict[str, Any] = field(default_factory=dict)
    has_preamble: bool = True

    def get(self, keyword: str, default: Any = None) -> Any:
        return self.values.get(keyword, default)

    @property
    def sop_class(self) -> str | None:
        return self.values.get("SOPClassUID") or self.media_sop_class

    @property
    def is_dicomdir(self) -> bool:
        return self.sop_class == MEDIA_STORAGE_DIRECTORY


class _Fallback(Exception):
    """The small parser met something it leaves to pydicom."""


class _Reader:
    """Position-addressed reads over a file with a growing window; big skips seek."""

    def __init__(self, fp: BinaryIO, size: int) -> None:
        self.fp = fp
        self.size = size
        self.base = 0
        self.buf = b""

    def get(self, pos: int, n: int) -> bytes:
        if pos + n > self.size:
            raise DicomReadError(f"header truncated: {n} bytes needed at offset {pos}, file is {self.size} bytes")
        end = self.base + len(self.buf)
        if pos < self.base or pos + n > end:
            if self.base <= pos <= end and pos + n - end <= _CHUNK * 4:
                self.fp.seek(end)
                self.buf += self.fp.read(max(_CHUNK, pos + n - end))
            else:
                self.fp.seek(pos)
                self.base = pos
                self.buf = self.fp.read(max(_CHUNK, n))
        start = pos - self.base
        chunk = self.buf[start : start + n]
        if len(chunk) != n:
            raise DicomReadError(f"header truncated at offset {pos}")
        return chunk


def _decode(raw: bytes, kind: str, little: bool, encoding: str) -> Any:
    if kind == "us":
        if len(raw) < 2:
            return None
        return struct.unpack("<H" if little else ">H", raw[:2])[0]
    text = raw.rstrip(b"\x00 ").lstrip(b" ")
    if kind == "uid":
        return text.rstrip(b"\x00").decode("ascii", "replace")
    if kind == "int":
        try:
            return int(float(text.split(b"\\")[0].decode("ascii").strip()))
        except (ValueError, UnicodeDecodeError, OverflowError):
            return None
    if kind == "float":
        try:
            return float(text.split(b"\\")[0].decode("ascii").strip())
        except (ValueError, UnicodeDecodeError):
            return None
    if kind == "floats":
        try:
            return tuple(float(v) for v in text.decode("ascii").split("\\"))
        except (ValueError, UnicodeDecodeError):
            return None
    return text.decode(encoding, "replace")


def _python_encoding(charset: str | None) -> str:
    if not charset:
        return "ascii"
    first = charset.split("\\")[-1].strip().upper()
    if first == "ISO_IR 192":
        return "utf-8"
    if first in ("ISO_IR 100", "ISO 2022 IR 100", ""):
        return "latin-1"
    try:
        from pydicom.charset import python_encoding

        return python_encoding.get(first, "latin-1")
    except ImportError:  # pragma: no cover - pydicom is a dependency
        return "latin-1"


def _skip_undefined(rd: _Reader, pos: int, implicit: bool, depth: int) -> int:
    """Skip a sequence of undefined length starting at ``pos``; return the offset after it."""
    if depth > _MAX_DEPTH:
        raise DicomReadError("sequences nested too deeply (bogus lengths?)")
    while True:
        tag_group, tag_elem, length = struct.unpack("<HHI", rd.get(pos, 8))
        tag = (tag_group << 16) | tag_elem
        pos += 8
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _Fallback("unexpected tag inside a sequence")
        if length != _UNDEFINED:
            pos += length
            continue
        # item of undefined length: elements until the item delimiter
        while True:
            g, e = struct.unpack("<HH", rd.get(pos, 4))
            tag = (g << 16) | e
            if tag == _ITEM_END:
                pos += 8
                break
            pos, length = _element_header(rd, pos, implicit)
            if length == _UNDEFINED:
                pos = _skip_undefined(rd, pos, implicit, depth + 1)
            else:
                pos += length


def _element_header(rd: _Reader, pos: int, implicit: bool) -> tuple[int, int]:
    """Return (offset of the value, value length) for the element at ``pos`` (little endian)."""
    if implicit:
        (length,) = struct.unpack("<I", rd.get(pos + 4, 4))
        return pos + 8, length
    head = rd.get(pos, 8)
    vr = head[4:6]
    if vr in _LONG_VRS:
        (length,) = struct.unpack("<I", rd.get(pos + 8, 4))
        return pos + 12, length
    if not (65 <= vr[0] <= 90 and 65 <= vr[1] <= 90):
        raise _Fallback("not a valid explicit VR")
    (length,) = struct.unpack("<H", head[6:8])
    return pos + 8, length


_U16 = struct.Struct("<H").unpack_from
_TAG = struct.Struct("<HH").unpack_from
_U32 = struct.Struct("<I").unpack_from
_HEAD = 65536
_HEAD_IMPLICIT = struct.Struct("<HHI").unpack_from
_HEAD_EXPLICIT = struct.Struct("<HH2sH").unpack_from


def _fast_read(fp: BinaryIO, path: str, size: int) -> Header:
    buf = fp.read(_HEAD)
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise _Fallback("no preamble")
    rd = _Reader(fp, size)
    rd.buf = buf
    pos = 132
    meta: dict[int, bytes] = {}
    while pos + 8 <= size:
        g, e = struct.unpack("<HH", rd.get(pos, 4))
        if g != 0x0002:
            break
        value_pos, length = _element_header(rd, pos, False)
        if length == _UNDEFINED or value_pos + length > size:
            raise _Fallback("odd file meta")
        if e in (0x0002, 0x0010):
            meta[e] = rd.get(value_pos, length)
        pos = value_pos + length
    ts = meta.get(0x0010, b"").rstrip(b"\x00 ").decode("ascii", "replace") or None
    media = meta.get(0x0002, b"").rstrip(b"\x00 ").decode("ascii", "replace") or None
    if ts is None or ts in (EXPLICIT_BE, DEFLATED):
        raise _Fallback("needs pydicom")
    implicit = ts == IMPLICIT_LE
    header = Header(path, ts, media)
    values = header.values
    encoding = "ascii"
    last_tag = -1
    long_vrs = _LONG_VRS
    by_tag = _BY_TAG
    blen = len(buf)
    head = _HEAD_IMPLICIT if implicit else _HEAD_EXPLICIT
    while pos + 8 <= size:
        if pos + 12 <= blen:
            # fast path: the element header lies inside the first block; one unpack per element
            if implicit:
                g, e, length = head(buf, pos)
                value_pos = pos + 8
            else:
                g, e, vr, length = head(buf, pos)
                if vr in long_vrs:
                    (length,) = _U32(buf, pos + 8)
                    value_pos = pos + 12
                elif vr.isupper():
                    value_pos = pos + 8
                else:
                    raise _Fallback("not a valid explicit VR")
            tag = (g << 16) | e
            if tag > _STOP_TAG:  # pixel data tags lie beyond too
                break
            if tag <= last_tag:
                raise _Fallback("tags out of order")
            last_tag = tag
        else:
            g, e = struct.unpack("<HH", rd.get(pos, 4))
            tag = (g << 16) | e
            if tag > _STOP_TAG or tag in _PIXEL_TAGS:
                break
            if tag <= last_tag:
                raise _Fallback("tags out of order")
            last_tag = tag
            value_pos, length = _element_header(rd, pos, implicit)
        if length == _UNDEFINED:
            pos = _skip_undefined(rd, value_pos, implicit, 0)
            continue
        if value_pos + length > size:
            raise DicomReadError(
                f"header truncated: element ({g:04X},{e:04X}) claims {length} bytes at offset {value_pos}, "
                f"file is {size} bytes"
            )
        wanted = by_tag.get(tag)
        if wanted is not None and length:
            keyword, kind = wanted
            raw = buf[value_pos : value_pos + length] if value_pos + length <= blen else rd.get(value_pos, length)
            value = _decode(raw, kind, True, encoding)
            if value is not None and value != "":
                values[keyword] = value
            if keyword == "SpecificCharacterSet":
                encoding = _python_encoding(value)
        pos = value_pos + length
    else:
        # ran out of file before the image description: a clean end only at an element boundary
        if pos != size:
            raise DicomReadError(f"header truncated: file ends inside an element at offset {pos}")
    if last_tag < 0 and pos + 8 > size:
        raise DicomReadError("header truncated: file meta but no data set")
    return header


def sniff_dataset_without_preamble(first: bytes) -> bool:
    """Does a file without the 'DICM' marker start like a DICOM data set (old ACR-NEMA style)?"""
    if len(first) < 8:
        return False
    g_le, e_le = struct.unpack("<HH", first[:4])
    g_be, _ = struct.unpack(">HH", first[:4])
    vr = first[4:6]
    explicit = vr.isalpha() and vr.isupper()
    if g_le in (0x0002, 0x0008) and (explicit or struct.unpack("<I", first[4:8])[0] < 0x10000):
        return e_le < 0x1000
    return g_be in (0x0002, 0x0008) and explicit


def _stop_after_scan_tags() -> Callable[[Any, str | None, int], bool]:
    state = {"last": -1}

    def stop(tag: Any, vr: str | None, length: int) -> bool:
        value = int(tag)
        if value > _STOP_TAG or value in _PIXEL_TAGS or value < state["last"]:
            return True
        state["last"] = value
        return False

    return stop


def _pydicom_read(path: str, size: int, first: bytes) -> Header:
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial
    from pydicom.tag import Tag

    has_preamble = len(first) >= 132 and first[128:132] == b"DICM"
    if not has_preamble and not sniff_dataset_without_preamble(first[:8]):
        raise NotDicomError("not a DICOM file (no 'DICM' marker at byte 128 and no recognisable data set)")
    tags: list[Any] = [Tag(g, e) for g, e, _ in SCAN_TAGS.values()]
    try:
        with open(path, "rb") as fp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            source: BinaryIO = fp
            if has_preamble:
                source = _maybe_inflate_header(fp)
            ds = read_partial(source, stop_when=_stop_after_scan_tags(), force=not has_preamble, specific_tags=tags)
    except InvalidDicomError as exc:
        raise NotDicomError(f"not a DICOM file ({_one_line(exc)})") from exc
    except (OSError, EOFError, struct.error, ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
        raise DicomReadError(f"header unreadable ({exc.__class__.__name__}: {_one_line(exc)})") from exc
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") or "") if meta is not None else ""
    media = str(meta.get("MediaStorageSOPClassUID", "") or "") if meta is not None else ""
    header = Header(path, ts or None, media or None, has_preamble=has_preamble)
    for keyword, (_g, _e, kind) in SCAN_TAGS.items():
        try:
            elem = ds.get(keyword)
        except Exception:  # a value pydicom cannot convert: treat as absent
            continue
        if elem is None or elem == "":
            continue
        value = _from_pydicom(elem, kind)
        if value is not None and value != "":
            header.values[keyword] = value
    if not header.values and not ts:
        raise NotDicomError("not a DICOM file (no recognisable data elements)")
    return header


def _from_pydicom(value: Any, kind: str) -> Any:
    try:
        if kind == "us":
            return int(value)
        if kind == "int":
            return int(float(value[0] if isinstance(value, list | tuple) else value))
        if kind == "float":
            return float(value[0] if isinstance(value, list | tuple) else value)
        if kind == "floats":
            return tuple(float(v) for v in value)
        if (
            kind == "text"
            and not isinstance(value, str | bytes)
            and hasattr(value, "__iter__")
            and not hasattr(value, "family_name")
        ):
            return "\\".join(str(v) for v in value)
        return str(value).strip()
    except (TypeError, ValueError, OverflowError):
        return None


def _maybe_inflate_header(fp: BinaryIO) -> BinaryIO:
    """pydicom inflates a whole deflated data set into memory; cap it for header reads."""
    import io

    start = fp.tell()
    fp.seek(128)
    head = fp.read(4)
    fp.seek(start)
    if head != b"DICM":
        return fp
    data = fp.read(65536)
    fp.seek(start)
    if DEFLATED.encode() not in data:
        return fp
    # Locate the end of the file meta group to split it from the deflated body.
    pos = 132
    while pos + 8 <= len(data):
        g = struct.unpack("<H", data[pos : pos + 2])[0]
        if g != 0x0002:
            break
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack("<I", data[pos + 8 : pos + 12])
            pos += 12 + length
        else:
            (length,) = struct.unpack("<H", data[pos + 6 : pos + 8])
            pos += 8 + length
    fp.seek(pos)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    body = b""
    while len(body) < 4 * 1024 * 1024:
        chunk = fp.read(65536)
        if not chunk:
            break
        body += inflater.decompress(chunk, 4 * 1024 * 1024 - len(body))
    fp.seek(0)
    meta_part = fp.read(pos)
    # Re-deflate the capped body so pydicom's own deflate path reads it unchanged.
    compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    rebuilt = meta_part + compressor.compress(body) + compressor.flush()
    buffer = io.BytesIO(rebuilt)
    buffer.name = getattr(fp, "name", None)
    return buffer


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def read_header(path: str | Path) -> Header:
    """Header-only read of one file for the index; raises a zsmed error with a one-line reason."""
    path = str(path)
    try:
        fp = open(path, "rb")  # noqa: SIM115 - closed below on every path
    except OSError as exc:
        raise input_file_error(path, exc) from exc
    try:
        size = os.fstat(fp.fileno()).st_size
        if size == 0:
            raise NotDicomError("empty file (0 bytes)", path=path)
        header: Header | None = None
        try:
            header = _fast_read(fp, path, size)
        except _Fallback:
            pass
        except struct.error:
            pass
        if header is None:
            fp.seek(0)
            header = _pydicom_read(path, size, fp.read(132))
        if not header.get("SOPInstanceUID") and not header.is_dicomdir:
            raise DicomReadError("header incomplete: no SOP Instance UID (truncated file?)", path=path)
        return header
    except (NotDicomError, DicomReadError) as exc:
        if exc.path is None:
            raise type(exc)(exc.reason, path=path) from exc
        raise
    except OSError as exc:
        raise InputFileError(f"read failed ({exc.strerror or exc})", path=path) from exc
    finally:
        fp.close()
