"""Damaged copies of pydicom's real test files, as a hospital's disks and CDs produce them: cut short at a
random byte, a few bytes flipped in the header, the second half zeroed. For sweeps that check every command and
screen answers a damaged file in one line naming it, never with a traceback."""

from __future__ import annotations

import random
from pathlib import Path

from tests.conftest import dicom_test_files

KINDS = ("cut", "flipped", "zeroed")


def damaged_copies(folder: Path, *, seed: int = 0, files: int = 16, max_bytes: int = 3_000_000) -> list[Path]:
    """``files`` of pydicom's test files (drawn with ``seed``) each written into ``folder`` once per kind of
    damage, and an empty file; returns the paths written."""
    rng = random.Random(seed)
    sources = sorted(p for p in dicom_test_files() if p.suffix.lower() == ".dcm" and p.stat().st_size < max_bytes)
    rng.shuffle(sources)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for number, source in enumerate(sources[:files]):
        data = source.read_bytes()
        for kind in KINDS:
            damaged = bytearray(data)
            if kind == "cut":
                damaged = damaged[: rng.randint(132, max(133, len(damaged) - 1))]
            elif kind == "flipped":
                for _ in range(rng.randint(1, 12)):
                    damaged[rng.randint(128, min(len(damaged) - 1, 3000))] = rng.randint(0, 255)
            else:
                half = rng.randint(len(damaged) // 2, len(damaged) - 1)
                damaged[half:] = bytes(len(damaged) - half)
            path = folder / f"{number:02d}_{kind}_{source.name}"
            path.write_bytes(bytes(damaged))
            written.append(path)
    empty = folder / "empty.dcm"
    empty.write_bytes(b"")
    return [*written, empty]
