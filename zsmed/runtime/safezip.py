"""Reading untrusted zip files (bundles, .zsm model files, the .npz inside a bundle) within limits.

A zip's central directory is read first; nothing is inflated before the caller has checked the
names (no duplicates, only the names it expects) and the sizes (each one, and their total). Each
member is then inflated in small chunks that stop at its declared size: a member whose directory
entry understates its size, or a deflate stream that inflates far beyond it, costs at most one
chunk over the limit before it is refused, never gigabytes of memory. No torch here.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from zsmed.errors import ZsmedError, input_file_error

CHUNK = 1 << 20
MAX_ENTRIES = 64
# Only these inflate in bounded chunks (zipfile's bzip2 and lzma readers inflate a whole read at once).
SAFE_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

ErrorFactory = Callable[..., ZsmedError]

# What reading a damaged or hostile zip raises: OSError (a read error), KeyError (a missing member),
# and from zipfile BadZipFile, EOFError, ValueError (a negative offset, a name that is not UTF-8),
# NotImplementedError (a "version needed to extract" no zip tool writes, an unknown compression
# method) and RuntimeError (an encrypted member). Callers that only peek at a zip (the models list)
# catch the same.
ZIP_READ_ERRORS: tuple[type[Exception], ...] = (OSError, KeyError, zipfile.BadZipFile, EOFError, ValueError,
                                                NotImplementedError, RuntimeError)


class SafeZip:
    """A zip whose members are listed (checked for duplicates) but not yet read.

    ``error``: the zsmed error class to raise (``BundleError`` for bundles, ``CheckpointError``
    for model files); ``what`` names the file kind in messages ("bundle", "model file")."""

    def __init__(self, path: str | Path, error: ErrorFactory, what: str, *, max_entries: int = MAX_ENTRIES) -> None:
        self.path = Path(path)
        self.error = error
        self.what = what
        try:
            self.archive = zipfile.ZipFile(self.path)
        except zipfile.BadZipFile as exc:
            raise error(f"not a zsmed {what}: the file is not a zip archive or is truncated ({exc})",
                        path=self.path) from exc
        except OSError as exc:
            raise input_file_error(self.path, exc) from exc
        except ZIP_READ_ERRORS as exc:
            raise error(f"not a zsmed {what}: the zip directory is malformed ({exc})", path=self.path) from exc
        infos = self.archive.infolist()
        if len(infos) > max_entries:
            self.close()
            raise error(f"the {what} holds {len(infos)} entries; a zsmed {what} has at most {max_entries}",
                        path=self.path)
        names = [info.filename for info in infos]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            self.close()
            raise error(f"the {what} holds two entries named {', '.join(map(repr, duplicates))} "
                        "(a crafted zip: refused)", path=self.path)
        self.infos = {info.filename: info for info in infos}

    def close(self) -> None:
        self.archive.close()

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def names(self) -> list[str]:
        return list(self.infos)

    def declared_size(self, name: str) -> int:
        return int(self.infos[name].file_size)

    def read(self, name: str, limit: int, *, expected_size: int | None = None) -> bytes:
        """The member's bytes, refusing it when the zip declares more than ``limit`` bytes (or a size
        other than ``expected_size``) and stopping inflation at that size whatever the stream holds."""
        info = self.infos.get(name)
        if info is None:
            raise self.error(f"the {self.what} has no {name}", path=self.path)
        declared = int(info.file_size)
        if declared > limit:
            raise self.error(f"{self.what} member {name} is implausibly large ({declared} bytes; at most "
                             f"{limit} allowed)", path=self.path)
        if expected_size is not None and declared != expected_size:
            raise self.error(f"{self.what} member {name} is {declared} bytes in the zip but {expected_size} in "
                             "the manifest: the file was altered or damaged", path=self.path)
        if info.compress_type not in SAFE_METHODS:
            raise self.error(f"{self.what} member {name} uses zip compression method {info.compress_type}; "
                             "zsmed reads only stored and deflated members", path=self.path)
        cap = min(declared, limit)
        parts: list[bytes] = []
        got = 0
        try:
            with self.archive.open(info) as stream:
                while True:
                    chunk = stream.read(min(CHUNK, cap + 1 - got))
                    if not chunk:
                        break
                    got += len(chunk)
                    if got > cap:
                        raise self.error(f"{self.what} member {name} inflates beyond its declared {cap} bytes "
                                         "(a crafted zip: refused)", path=self.path)
                    parts.append(chunk)
        except ZsmedError:
            raise
        except ZIP_READ_ERRORS as exc:
            # zipfile reports a truncated or corrupted member (bad CRC), an unknown compression
            # method or an encrypted member here.
            raise self.error(f"{self.what} member {name} is damaged ({exc})", path=self.path) from exc
        except Exception as exc:  # zlib.error and the like: whatever inflating hostile bytes raises
            raise self.error(f"{self.what} member {name} is damaged ({exc.__class__.__name__}: {exc})",
                             path=self.path) from exc
        if got != declared:
            raise self.error(f"{self.what} member {name} is truncated ({got} of {declared} bytes)", path=self.path)
        return b"".join(parts)


def read_zip_bytes_members(data: bytes, error: ErrorFactory, what: str, path: str | Path | None,
                           allowed: set[str], limit: int) -> dict[str, bytes]:
    """The members of a small zip held in memory (an ``.npz``), each within ``limit`` bytes and
    their total within ``limit``; only names in ``allowed`` may appear."""
    import io

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except ZIP_READ_ERRORS as exc:
        raise error(f"{what} is not a valid zip ({exc})", path=path) from exc
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names) or not set(names) <= allowed:
            raise error(f"{what} holds unexpected entries ({', '.join(sorted(map(repr, names)))[:200]})", path=path)
        if sum(int(info.file_size) for info in infos) > limit:
            raise error(f"{what} declares {sum(int(i.file_size) for i in infos)} bytes; at most {limit} allowed",
                        path=path)
        out: dict[str, bytes] = {}
        for info in infos:
            if info.compress_type not in SAFE_METHODS:
                raise error(f"{what} member {info.filename} uses zip compression method {info.compress_type}",
                            path=path)
            parts: list[bytes] = []
            got = 0
            try:
                with archive.open(info) as stream:
                    while chunk := stream.read(min(CHUNK, int(info.file_size) + 1 - got)):
                        got += len(chunk)
                        if got > int(info.file_size):
                            raise error(f"{what} member {info.filename} inflates beyond its declared size",
                                        path=path)
                        parts.append(chunk)
            except ZsmedError:
                raise
            except Exception as exc:
                raise error(f"{what} member {info.filename} is damaged ({exc.__class__.__name__}: {exc})",
                            path=path) from exc
            out[info.filename] = b"".join(parts)
    return out


