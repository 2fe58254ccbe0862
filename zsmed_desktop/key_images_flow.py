"""Key images in the app: the reader flags images (K) while reading, then saves the flags of a study for
the PACS as one key image note (a Key Object Selection document, ``zsmed.report.key_images``). Notes
found by a scan (zsmed's or another viewer's) flag their images again when the study is opened, so
the viewer shows "★ Key image (saved)" on them. No Qt here: the window shows what this says.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from zsmed.errors import ZsmedError
from zsmed.report.key_images import KEY_OBJECT_SELECTION, KeyImageNote, read_key_images, write_key_images

FLAGGED_LINE = "★ Key image"
SAVED_LINE = "★ Key image (saved)"


class KeyImages:
    """The images flagged in this session (not yet saved, in the order flagged) and those that saved
    key image notes flag."""

    def __init__(self) -> None:
        self._flagged: dict[Path, str] = {}  # image -> its study's Study Instance UID, in the order flagged
        self._saved: dict[Path, KeyImageNote] = {}

    def toggle(self, image: Path, study: str) -> bool:
        """Flag ``image`` or take its flag off; returns whether it is flagged now. A flag a saved note
        holds stays as it is: the note is in the PACS already (a second note would repeat it)."""
        if image in self._saved:
            return True
        if image in self._flagged:
            del self._flagged[image]
            return False
        self._flagged[image] = study
        return True

    def is_key(self, image: Path | None) -> bool:
        return image is not None and (image in self._flagged or image in self._saved)

    def is_saved(self, image: Path | None) -> bool:
        return image is not None and image in self._saved

    def unsaved(self, study: str) -> list[Path]:
        """The images of ``study`` (a Study Instance UID) flagged and not yet saved, in the order flagged
        (a look at the few flags: it runs on every image the reader pages to)."""
        return [image for image, flagged_in in self._flagged.items() if flagged_in == study]

    def saved(self, note: KeyImageNote, images: Iterable[Path]) -> None:
        """``images`` are flagged by ``note`` (just written, or found by a scan)."""
        for image in images:
            self._flagged.pop(image, None)
            self._saved[image] = note

    def clear_saved(self) -> None:
        """A new scan: what saved notes flag is read from the files it found."""
        self._saved.clear()

    def lines(self) -> dict[Path, str]:
        """The viewer's line for each key image."""
        return {**{image: SAVED_LINE for image in self._saved}, **{image: FLAGGED_LINE for image in self._flagged}}

    def load(self, note_files: Iterable[Path], images_by_uid: Mapping[str, Path]) -> int:
        """Read the key image notes a scan found and flag the images they name that are open; returns
        how many notes could be read (a damaged one is skipped: the Problems tab names unreadable files)."""
        read = 0
        for path in note_files:
            try:
                note = read_key_images(path)
            except (ZsmedError, OSError):
                continue
            read += 1
            self.saved(note, [images_by_uid[uid] for uid in note.referenced if uid in images_by_uid])
        return read


def save_key_images(images: list[Path], *, note: str, reader: str, out_dir: Path | None) -> Path:
    """One key image note for ``images`` (one study's) next to the first image (``out_dir`` None) or in
    ``out_dir``. Raises ``ZsmedError`` (one line naming the file) where none can be written."""
    if not images:
        raise ZsmedError("no image of this study is flagged as a key image (K flags the image shown)")
    return write_key_images(images, note=note, reader=reader,
                            out_dir=out_dir if out_dir is not None else images[0].parent)


__all__ = ["FLAGGED_LINE", "KEY_OBJECT_SELECTION", "SAVED_LINE", "KeyImages", "save_key_images"]
