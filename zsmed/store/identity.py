"""What the case log keeps about an image: its DICOM identity (UIDs, modality, study date, the
patient ID as a keyed hash) or a photo's SHA-256 -- never the patient's name or birth date.

The HMAC key for patient IDs is a per-site secret in a file beside ``site.json`` (created 0600 on
first use), never in the database: a copied log alone cannot be used to test a guessed patient ID.
"""

from __future__ import annotations

import hashlib
import hmac
import warnings
from dataclasses import dataclass
from pathlib import Path

from zsmed.digest import file_sha256
from zsmed.errors import CaseLogError

SECRET_FILE_NAME = "caselog.secret"
_HEADER_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "StudyDate", "PatientID"]


@dataclass(frozen=True)
class ImageIdentity:
    identity: str  # unique key: "sop:<uid>", "sha256:<hex>" or "path:<absolute path>"
    kind: str  # dicom | photo | file | missing
    study_uid: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None
    modality: str | None = None
    study_date: str | None = None
    sha256: str | None = None
    patient_id: str | None = None  # plain; the log stores it only as a keyed hash unless the site opts in


def secret_file() -> Path:
    from zsmed.paths import user_data_dir

    return user_data_dir() / SECRET_FILE_NAME


def site_secret(path: Path | None = None) -> bytes:
    """The site's patient-ID key, created (0600, atomically, race-free) on first use."""
    from zsmed.paths import read_or_create_secret

    path = path or secret_file()
    try:
        return read_or_create_secret(path)
    except ValueError as exc:
        raise CaseLogError("the case-log secret is damaged (expected 64 hex digits); restore it from a backup",
                           path=path) from exc
    except OSError as exc:
        raise CaseLogError(f"cannot read or create the case-log secret ({exc.strerror or exc})", path=path) from exc


def patient_id_hash(patient_id: str, secret: bytes) -> str:
    return hmac.new(secret, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _text(value: object) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def read_identity(source: str) -> ImageIdentity:
    """A DICOM file's header (no pixels), a photo's SHA-256, or where an unreadable file was."""
    from zsmed.imageio import is_photo

    path = Path(source)
    absolute = str(path.absolute())
    if not path.is_file():
        return ImageIdentity(identity=f"path:{absolute}", kind="missing")
    if not is_photo(path):
        try:
            import pydicom

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=_HEADER_TAGS)
            sop = _text(ds.get("SOPInstanceUID"))
        except Exception:  # not DICOM, or a header pydicom cannot read: identified by content below
            sop = None
        if sop:
            return ImageIdentity(
                identity=f"sop:{sop}", kind="dicom", sop_uid=sop,
                study_uid=_text(ds.get("StudyInstanceUID")), series_uid=_text(ds.get("SeriesInstanceUID")),
                modality=_text(ds.get("Modality")), study_date=_text(ds.get("StudyDate")),
                patient_id=_text(ds.get("PatientID")),
            )
    try:
        digest = file_sha256(path)
    except OSError:
        return ImageIdentity(identity=f"path:{absolute}", kind="missing")
    return ImageIdentity(identity=f"sha256:{digest}", kind="photo" if is_photo(path) else "file", sha256=digest)
