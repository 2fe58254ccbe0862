"""Every element of a DICOM file as display rows: the data behind ``zsmed tags`` and the app's
"DICOM tags" dialog (what PACS viewers call DICOM information / DICOM tags).

A radiologist or a hospital's IT person asks "what does this file actually say?": patient and study
attributes, the transfer syntax, a vendor's private tags, the nested sequences. ``tag_rows`` lists
them depth first (file meta first), one ``TagRow`` per element or sequence item, each value as one
line of display text. It never raises for a value: an element pydicom cannot convert (an odd
length for its VR, an unknown VR) is shown as ``unreadable: <reason>`` and the rest goes on.

Large values are not loaded to be shown: ``read_tag_rows`` reads the file with a ``defer_size``, so
pixel data, overlays and vendor blobs stay unread ``RawDataElement``s and are reported by their
length. Pixel data is never decoded.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from struct import unpack
from typing import TYPE_CHECKING, Any

from zsmed.errors import warning_text

if TYPE_CHECKING:
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.dataset import Dataset
    from pydicom.tag import BaseTag

# Values longer than this are not read from the file to be listed (pixel data, overlays, vendor
# blobs); text values are far shorter, so every value a reader can read is still shown.
DEFER_SIZE = 16 * 1024
MAX_ROWS = 20_000
MAX_VALUE_CHARS = 200
HEX_PREVIEW_BYTES = 16
MAX_READ_NOTES = 10
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})  # Pixel Data, Float / Double Float Pixel Data
UNDEFINED_LENGTH = 0xFFFFFFFF
# Binary VRs whose value is bytes: shown as a short hex preview, never dumped.
_BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN", "OB or OW", "US or OW"})
# Cap on the fragments counted by walking item headers (a crafted file may hold millions).
_MAX_FRAGMENTS_COUNTED = 1_000_000

ELEMENT, ITEM, MORE = "element", "item", "more"


@dataclass(frozen=True)
class TagRow:
    """One line of the tag listing, in depth-first order: ``depth`` 0 is the top level, a sequence's
    items are one level below it and their elements one below that.

    ``kind`` is ``"element"``, ``"item"`` (a sequence item: empty ``tag`` and ``vr``, name
    ``Item 1`` ...) or ``"more"`` (the last row of a listing cut at ``max_rows``). ``children`` is
    the number of rows directly below: items of a sequence, elements of an item, and for the
    ``"more"`` row the number of elements left out."""

    depth: int
    tag: str
    name: str
    vr: str
    value: str
    private: bool = False
    children: int = 0
    kind: str = ELEMENT


# --- names and text ---------------------------------------------------------------------------
def tag_text(tag: int) -> str:
    """``(gggg,eeee)``, as dcmdump and the standard write a tag."""
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def element_name(tag: int, private_creator: str | None = None) -> str:
    """pydicom's dictionary name; for a private tag the private dictionary's name when its creator
    is known to pydicom, else "Private tag" ("Private Creator" for the creator elements)."""
    from pydicom.datadict import dictionary_description, private_dictionary_description
    from pydicom.tag import Tag

    tag = Tag(tag)
    if tag.is_private:
        if tag.element == 0:
            return "Private Group Length"
        if tag.is_private_creator:
            return "Private Creator"
        if private_creator:
            try:
                return str(private_dictionary_description(tag, private_creator))
            except KeyError:
                pass
        return "Private tag"
    try:
        return str(dictionary_description(tag))
    except KeyError:
        return "Group Length" if tag.element == 0 else "Unknown tag"


def dictionary_vr(tag: int) -> str:
    """The dictionary's VR for a public tag ("UN" when unknown): the VR an implicit-VR file does not
    carry, for an element whose value was not read."""
    from pydicom.datadict import dictionary_VR

    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def one_line_text(text: str, max_chars: int = MAX_VALUE_CHARS) -> str:
    """``text`` on one line that cannot rewrite a terminal: line breaks become spaces, other control
    or non-printing characters their Python escape; cut at ``max_chars`` with an ellipsis."""
    text = " ".join(text.splitlines()) if ("\n" in text or "\r" in text) else text
    if not text.isprintable():
        text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    if len(text) > max_chars:
        text = text[: max(max_chars - 1, 0)] + "…"
    return text


def hex_preview(data: bytes, length: int | None = None) -> str:
    """The first bytes in hex and the length: ``00 01 fe … (32768 bytes)``."""
    length = len(data) if length is None else length
    head = " ".join(f"{b:02x}" for b in data[:HEX_PREVIEW_BYTES])
    more = " …" if length > HEX_PREVIEW_BYTES else ""
    return f"{head}{more} ({length} bytes)" if head else f"({length} bytes)"


def _scalar_text(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return hex_preview(bytes(value))
    return str(value)


def value_text(value: Any, vr: str, max_chars: int = MAX_VALUE_CHARS) -> str:
    """One line for a converted element value: multi-values joined with a backslash (as stored),
    bytes as a hex preview with their length, long text cut with an ellipsis."""
    from pydicom.multival import MultiValue

    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return hex_preview(bytes(value))
    if isinstance(value, MultiValue | list | tuple):
        if vr in _BINARY_VRS:
            return one_line_text(f"{len(value)} values", max_chars)
        parts: list[str] = []
        size = 0
        for item in value:  # stop early: a 100,000-value array is not joined to show 200 characters
            part = _scalar_text(item)
            parts.append(part)
            size += len(part) + 1
            if size > max_chars:
                break
        return one_line_text("\\".join(parts), max_chars)
    if vr == "UI":
        return one_line_text(_uid_text(str(value)), max_chars)
    return one_line_text(_scalar_text(value), max_chars)


def _uid_text(uid: str) -> str:
    """A UID with its registered name, as dcmdump prints it: a transfer syntax or SOP class is read
    at a glance ("… (CT Image Storage)"); instance UIDs have no name and stay as they are."""
    from pydicom.uid import UID

    name = UID(uid).name
    return f"{uid} ({name})" if name and name != uid else uid


# --- pixel data -------------------------------------------------------------------------------
def _count_fragments(read: Any, seek: Any, little_endian: bool) -> tuple[int, int]:
    """(fragments, bytes) of encapsulated pixel data by walking its item headers only (the Basic
    Offset Table item is not a fragment); the fragments' bytes are skipped, not read."""
    endian = "<" if little_endian else ">"
    items = size = 0
    while items <= _MAX_FRAGMENTS_COUNTED:
        header = read(8)
        if len(header) < 8:
            break
        group, elem, length = unpack(f"{endian}HHL", header)
        if (group, elem) != (0xFFFE, 0xE000) or length == UNDEFINED_LENGTH:
            break  # the sequence delimiter, or damage: what was counted stands
        items += 1
        size += length
        seek(length)
    return max(items - 1, 0), size


def _fragments_in_bytes(value: bytes, little_endian: bool) -> tuple[int, int]:
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        chunk = value[pos : pos + n]
        pos += len(chunk)
        return chunk

    def seek(n: int) -> None:
        nonlocal pos
        pos += n

    return _count_fragments(read, seek, little_endian)


def _fragments_in_file(filename: str, offset: int, little_endian: bool) -> tuple[int, int] | None:
    try:
        with open(filename, "rb") as fp:
            fp.seek(offset)
            return _count_fragments(fp.read, lambda n: fp.seek(n, os.SEEK_CUR), little_endian)
    except OSError:
        return None


def pixel_value_text(ds: Dataset, raw: RawDataElement | DataElement) -> str:
    """Pixel data described, never decoded or dumped: ``32768 bytes`` (native) or
    ``encapsulated, 3 fragments (51234 bytes)``. Unread (deferred) encapsulated data is counted
    from its item headers in the file, without reading the frames."""
    value = raw.value
    undefined = getattr(raw, "is_undefined_length", False) or getattr(raw, "length", 0) == UNDEFINED_LENGTH
    little = bool(getattr(raw, "is_little_endian", getattr(ds, "is_little_endian", True)))
    if not undefined:
        length = len(value) if isinstance(value, bytes | bytearray) else int(getattr(raw, "length", 0) or 0)
        return f"{length} bytes"
    counted: tuple[int, int] | None
    if isinstance(value, bytes | bytearray):
        counted = _fragments_in_bytes(bytes(value), little)
    else:
        filename = getattr(ds, "filename", None)
        where = getattr(raw, "value_tell", None)
        counted = _fragments_in_file(filename, where, little) if isinstance(filename, str) and where else None
    if counted is None:
        return "encapsulated (not read)"
    fragments, size = counted
    return f"encapsulated, {fragments} fragment{'s' if fragments != 1 else ''} ({size} bytes)"


# --- walking the data set ---------------------------------------------------------------------
def _private_creator(ds: Dataset, tag: BaseTag) -> str | None:
    """The creator string reserving a private element's block ((gggg,00xx) for (gggg,xxyy))."""
    if not tag.is_private or tag.element < 0x1000:
        return None
    creator_tag = (tag.group << 16) | (tag.element >> 8)
    try:
        if creator_tag not in ds:
            return None
        value = ds[creator_tag].value
    except Exception:
        return None
    if isinstance(value, bytes | bytearray):
        value = value.decode("latin-1", "replace")
    return str(value).strip() if value else None


def _is_deferred(raw: object) -> bool:
    from pydicom.dataelem import RawDataElement

    return isinstance(raw, RawDataElement) and raw.value is None and raw.length != 0


def _raw_vr(raw: object, tag: int) -> str:
    vr = getattr(raw, "VR", None)
    return str(vr) if vr else dictionary_vr(tag)


def _walk(ds: Dataset, depth: int, max_chars: int) -> Iterator[TagRow]:
    """Rows for ``ds``'s elements, sequences expanded depth first. Deferred values are reported by
    their length (``Dataset.get_item(keep_deferred=True)`` does not read them); a deferred sequence
    is read, since its items are structure, not bulk data."""
    from pydicom.tag import Tag

    for tag in sorted(ds.keys()):
        tag = Tag(tag)
        raw = ds.get_item(tag, keep_deferred=True)
        private = bool(tag.is_private)
        name = element_name(tag, _private_creator(ds, tag))
        text = tag_text(tag)
        if _is_deferred(raw) and tag not in PIXEL_TAGS and _raw_vr(raw, tag) != "SQ":  # bulk data: its length
            length = int(getattr(raw, "length", 0))
            shown = "encapsulated (not read)" if length == UNDEFINED_LENGTH else f"{length} bytes (not loaded)"
            yield TagRow(depth, text, name, _raw_vr(raw, tag), shown, private)
            continue
        items: list[Dataset] | None = None
        try:  # pydicom's warnings (a bad charset, an invalid value) are the caller's: read_tag_rows keeps them
            if tag in PIXEL_TAGS and raw is not None and _is_deferred(raw):
                vr, shown = _raw_vr(raw, tag), pixel_value_text(ds, raw)
            else:
                elem = ds[tag]  # converted here; a deferred value was not read (see above)
                vr = str(elem.VR or "")
                items = list(elem.value or []) if vr == "SQ" else None
                if items is not None:
                    shown = f"{len(items)} item{'s' if len(items) != 1 else ''}"
                elif tag in PIXEL_TAGS:
                    shown = pixel_value_text(ds, elem)
                else:
                    shown = value_text(elem.value, vr, max_chars)
        except Exception as exc:
            yield TagRow(depth, text, name, _raw_vr(raw, tag), _unreadable(exc, max_chars), private)
            continue
        yield TagRow(depth, text, name, vr, shown, private, len(items) if items is not None else 0)
        for number, item in enumerate(items or [], start=1):
            count = len(item.keys())
            yield TagRow(depth + 1, "", f"Item {number}", "", f"{count} element{'s' if count != 1 else ''}",
                         private, count, ITEM)
            yield from _walk(item, depth + 2, max_chars)


def _unreadable(exc: BaseException, max_chars: int) -> str:
    from zsmed.dicom.decode import one_line

    return one_line_text(f"unreadable: {one_line(exc)}", max_chars)


def tag_rows(dataset: Dataset, *, max_rows: int = MAX_ROWS, max_value_chars: int = MAX_VALUE_CHARS) -> list[TagRow]:
    """Every element of ``dataset`` as rows, depth first: the file meta (group 0002) first when
    present, then the data set. Past ``max_rows`` the listing ends with one ``"more"`` row that
    says how many elements were left out (a crafted file can hold millions)."""
    meta = getattr(dataset, "file_meta", None)
    parts = [meta] if meta is not None and len(meta.keys()) else []
    parts.append(dataset)
    rows: list[TagRow] = []
    left_out = 0
    for part in parts:
        for row in _walk(part, 0, max_value_chars):
            if len(rows) < max_rows:
                rows.append(row)
            elif row.kind == ELEMENT:
                left_out += 1
    if left_out:
        rows.append(TagRow(0, "", f"… {left_out} more element{'s' if left_out != 1 else ''} not shown", "", "",
                           False, left_out, MORE))
    return rows


def read_tag_rows(
    path: str | Path, *, max_rows: int = MAX_ROWS, max_value_chars: int = MAX_VALUE_CHARS
) -> tuple[list[TagRow], list[str]]:
    """The rows of a DICOM file and its read warnings (one line each), values over ``DEFER_SIZE``
    left unread. ``NotDicomError`` / ``DicomReadError`` / ``InputFileError`` name the file."""
    from zsmed.dicom.decode import open_dataset

    ds, notes = open_dataset(path, defer_size=DEFER_SIZE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = tag_rows(ds, max_rows=max_rows, max_value_chars=max_value_chars)
    for warning in caught:
        line = one_line_text(warning_text(warning.message), 300)
        if line not in notes and len(notes) < MAX_READ_NOTES:
            notes.append(line)
    return rows, notes


# --- using the rows ---------------------------------------------------------------------------
def row_matches(row: TagRow, text: str) -> bool:
    """Whether ``text`` (any case) is in the row's tag (``0010,0010`` or ``00100010`` too), name or
    value. An empty text matches everything."""
    needle = text.strip().casefold()
    if not needle:
        return True
    compact = row.tag.strip("()").replace(",", "")
    return any(needle in field.casefold() for field in (row.tag, compact, row.name, row.value))


def filter_rows(rows: Sequence[TagRow], text: str) -> list[TagRow]:
    """The rows matching ``text`` and the sequence / item rows above each (a match deep in a
    sequence keeps its place in the tree)."""
    if not text.strip():
        return list(rows)
    keep = [False] * len(rows)
    ancestors: list[int] = []  # index of the open row at each depth
    for index, row in enumerate(rows):
        del ancestors[row.depth :]
        if row_matches(row, text):
            keep[index] = True
            for above in ancestors:
                keep[above] = True
        ancestors.append(index)
    return [row for row, kept in zip(rows, keep, strict=True) if kept]


def element_count(rows: Sequence[TagRow]) -> int:
    """Data elements in the listing (sequence items not counted), those cut off included."""
    return sum(1 for row in rows if row.kind == ELEMENT) + sum(row.children for row in rows if row.kind == MORE)


def transfer_syntax_name(rows: Sequence[TagRow]) -> str | None:
    """The file meta's transfer syntax by name (its UID when pydicom does not know it)."""
    from pydicom.uid import UID

    for row in rows:
        if row.depth == 0 and row.tag == "(0002,0010)" and row.value:
            uid = row.value.split(" (", 1)[0].strip()  # the value carries the name after the UID
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a damaged UID is shown as it is, not warned about
                name = UID(uid).name
            return str(name) if name else uid
    return None


def summary_text(rows: Sequence[TagRow]) -> str:
    """One line: ``312 elements · Explicit VR Little Endian``."""
    count = element_count(rows)
    syntax = transfer_syntax_name(rows) or "no file meta (transfer syntax not stated)"
    return f"{count} element{'s' if count != 1 else ''} · {syntax}"


def dump_lines(rows: Sequence[TagRow]) -> list[str]:
    """The rows as dcmdump-like lines: ``(0010,0010) PN Patient's Name  DOE^JANE``, two spaces of
    indent per level."""
    lines = []
    for row in rows:
        indent = "  " * row.depth
        if row.kind == ELEMENT:
            lines.append(f"{indent}{row.tag} {row.vr or '??':2} {row.name}  {row.value}".rstrip())
        elif row.kind == ITEM:
            lines.append(f"{indent}{row.name}  ({row.value})")
        else:
            lines.append(f"{indent}{row.name}")
    return lines


def row_dict(row: TagRow) -> dict[str, Any]:
    """A row as JSON-ready fields."""
    return {"depth": row.depth, "tag": row.tag, "name": row.name, "vr": row.vr, "value": row.value,
            "private": row.private, "children": row.children, "kind": row.kind}
