"""One error hierarchy for zsmed.

Every error a user can meet is a ``ZsmedError``. Each subclass also inherits the builtin that
callers would naturally catch (``ValueError`` for bad content, ``OSError`` for files and missing
components), so generic code keeps working. Messages name the file and the reason in one line:
the CLI and the desktop app print ``str(error)`` and nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path


class ZsmedError(Exception):
    """Base of every error zsmed raises on purpose."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


# --- input files -------------------------------------------------------------------------------
class InputFileError(ZsmedError, OSError):
    """A file that cannot be opened or read at all (missing, permissions, a directory)."""


def input_file_error(path: str | Path, exc: OSError) -> InputFileError:
    """The one-line reason for an ``OSError`` met while opening or reading ``path``."""
    if isinstance(exc, FileNotFoundError):
        reason = "file not found"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    elif isinstance(exc, IsADirectoryError):
        reason = "is a directory, not a file"
    else:
        reason = f"cannot read ({exc.strerror or exc})"
    return InputFileError(reason, path=path)


class NotDicomError(ZsmedError, ValueError):
    """The file is not DICOM (no preamble and no recognisable data set)."""


class DicomReadError(ZsmedError, ValueError):
    """A DICOM file whose header or structure is broken (truncated, bogus lengths)."""


class NoPixelSpacingError(ZsmedError, ValueError):
    """The image has no pixel spacing in mm: its marks measure pixels, which no report should carry."""


class NoPixelDataError(ZsmedError, ValueError):
    """A valid DICOM object that holds no image (SR, RT plan, presentation state ...)."""


# How a NoPixelDataError's reason begins: results that only carry the reason (a prediction's error)
# tell such objects from files that could not be read by it.
NO_IMAGE_IN_OBJECT = "no image in this object"


class PixelDecodeError(ZsmedError, ValueError):
    """Pixel data is present but cannot be turned into a correct image."""


class UnsupportedTransferSyntaxError(PixelDecodeError):
    """No permissive-licence codec installed here decodes this transfer syntax."""


class DecoderCrashError(PixelDecodeError):
    """The codec crashed or hung on this file; it was contained in a worker process."""


class ImageFormatError(ZsmedError, ValueError):
    """A photograph (PNG/JPEG/BMP) that cannot be decoded, or an image preprocessing cannot use."""


# --- data sets and models ----------------------------------------------------------------------
class DatasetError(ZsmedError, ValueError):
    """A class folder, metadata.csv or support set that cannot serve (empty class, too few images)."""


class ConfigError(ZsmedError, ValueError):
    """A description/class-definition/config file with missing or invalid content."""


class EncoderUnavailableError(ZsmedError, OSError):
    """An encoder whose weights or package are not on this machine (nothing is downloaded)."""


class UnknownEncoderError(ZsmedError, ValueError):
    """A name the encoder registry does not know."""


class CheckpointError(ZsmedError, ValueError):
    """A checkpoint that is unreadable, for another encoder, or of a newer format."""


class AlignmentError(ZsmedError, ValueError):
    """Anchors that cannot fit the chosen alignment (too few, mismatched encoders or dimensions)."""


# --- bundles and runtime ------------------------------------------------------------------------
class BundleError(ZsmedError, ValueError):
    """A model bundle that is malformed, tampered with, unsigned where required, or too new."""


class ExportError(ZsmedError, ValueError):
    """Export refused: parity check failed, or patient data would be written into the bundle."""


class BackendUnavailableError(ZsmedError, OSError):
    """The inference backend (onnxruntime, OpenVINO) is not installed or cannot load the model."""


class PacsError(ZsmedError, OSError):
    """The PACS could not be reached, refused the association or did not answer."""


class OcrUnavailableError(ZsmedError, OSError):
    """The OCR engine that finds text burned into the pixels (tesseract) is not installed."""


# --- case log -----------------------------------------------------------------------------------
class CaseLogError(ZsmedError, ValueError):
    """The case log is unreadable or its hash chain shows tampering."""


class Cancelled(ZsmedError):
    """A long job stopped because its caller asked it to."""


_STANDARD_POINTER = re.compile(r"\s*Please see <[^>]*> for [^.]*\.?")


def warning_text(message: object) -> str:
    """A library's warning in one line, without pydicom's pointer to the standard's tables ("Please see
    <https://dicom.nema.org/…> for allowed values for each VR."): what the reader is told, not where to read."""
    return _STANDARD_POINTER.sub("", " ".join(str(message).split()))
