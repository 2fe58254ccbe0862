"""Getting studies from the PACS: find a patient's studies (C-FIND, study root) and fetch one (C-GET), as a
PACS workstation's "query / retrieve" does, into the folder where studies received from the PACS arrive.

C-GET brings the images back over the same association, so nothing has to be configured on the PACS for
this workstation's address (a C-MOVE would need that). Before fetching, the study's images are listed
(C-FIND at image level) for their kinds of object, and each kind is offered in every common encoding, each
in its own presentation context: the PACS then sends each image as it keeps it, with nothing to transcode
(which many PACS cannot do for compressed images). Each image is kept as ``zsmed.dicom.receiver`` keeps what
is sent to it (as sent, written whole or not at all, once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmed.dicom.network import DEFAULT_TIMEOUT_S, MAX_CONTEXTS, PacsNode, associate
from zsmed.dicom.receiver import Batch, keep_instance
from zsmed.errors import PacsError
from zsmed.progress import Job, Progress

# The encodings offered for each kind of object fetched: what PACS keep images in (uncompressed first).
RETRIEVE_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, first-order prediction
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline
    "1.2.840.10008.1.2.4.51",  # JPEG Extended
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian
)


@dataclass(frozen=True)
class StudyMatch:
    """A study the PACS holds, as its C-FIND answered."""

    study_uid: str
    patient_id: str
    patient_name: str
    date: str
    description: str
    modalities: str
    images: int | None
    accession: str

    def line(self) -> str:
        """'20040119 · CT · CT chest · 5 images · CompressedSamples^CT1 (ID 1CT1)'."""
        images = f"{self.images} image{'s' if self.images != 1 else ''}" if self.images is not None else ""
        who = f"{self.patient_name} (ID {self.patient_id})" if self.patient_id else self.patient_name
        return " · ".join(x for x in (self.date or "no date", self.modalities, self.description, images, who) if x)


def _text(ds: Any, keyword: str) -> str:
    from pydicom.multival import MultiValue

    value = ds.get(keyword, "")
    if value is None:
        return ""
    if isinstance(value, MultiValue):  # ModalitiesInStudy: CT\SR
        return "\\".join(str(v) for v in value)
    return str(value).strip()


def _count(ds: Any, keyword: str) -> int | None:
    try:
        return int(str(ds.get(keyword, "")).strip())
    except ValueError:
        return None


def find_studies(node: PacsNode, *, patient_id: str = "", patient_name: str = "",
                 timeout: float = DEFAULT_TIMEOUT_S) -> list[StudyMatch]:
    """The studies of the PACS matching a patient ID and / or a name (DICOM wildcards: ``DOE*``), newest first;
    ``PacsError`` saying why not."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

    if not patient_id.strip() and not patient_name.strip():
        raise PacsError("say whose studies to look for: a patient ID or a name (DOE* finds every DOE)")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = patient_id.strip()
    query.PatientName = patient_name.strip()
    for keyword in ("StudyInstanceUID", "StudyDate", "StudyDescription", "ModalitiesInStudy",
                    "NumberOfStudyRelatedInstances", "AccessionNumber"):
        setattr(query, keyword, "")
    assoc = associate(node, [(StudyRootQueryRetrieveInformationModelFind,
                               [ExplicitVRLittleEndian, ImplicitVRLittleEndian])], timeout)
    matches: list[StudyMatch] = []
    try:
        for status, found in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if status is None or "Status" not in status:
                raise PacsError(f"the PACS {node} did not answer the query within {timeout:g} s")
            code = int(status.Status)
            if code in (0xFF00, 0xFF01) and found is not None:
                matches.append(StudyMatch(_text(found, "StudyInstanceUID"), _text(found, "PatientID"),
                                          _text(found, "PatientName"), _text(found, "StudyDate"),
                                          _text(found, "StudyDescription"), _text(found, "ModalitiesInStudy"),
                                          _count(found, "NumberOfStudyRelatedInstances"),
                                          _text(found, "AccessionNumber")))
            elif code != 0x0000:
                raise PacsError(f"the PACS {node} refused the query (status 0x{code:04X})")
    finally:
        if assoc.is_established:
            assoc.release()
    return sorted((m for m in matches if m.study_uid), key=lambda m: m.date, reverse=True)


def find_studies_job(node: PacsNode, *, patient_id: str = "", patient_name: str = "",
                     timeout: float = DEFAULT_TIMEOUT_S) -> Job[list[StudyMatch]]:
    """``find_studies`` as a job, for the app's worker (a PACS slow to answer keeps the window free)."""
    yield Progress(0, 1, f"asking {node}")
    return find_studies(node, patient_id=patient_id, patient_name=patient_name, timeout=timeout)


def _kinds_in_study(node: PacsNode, study_uid: str, timeout: float) -> tuple[list[str], int]:
    """The kinds of object (SOP classes) of a study's images and how many images, from an image-level C-FIND."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.StudyInstanceUID = study_uid
    query.SeriesInstanceUID = ""
    query.SOPInstanceUID = ""
    query.SOPClassUID = ""
    assoc = associate(node, [(StudyRootQueryRetrieveInformationModelFind,
                               [ExplicitVRLittleEndian, ImplicitVRLittleEndian])], timeout)
    kinds: dict[str, None] = {}
    count = 0
    try:
        for status, found in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if status is not None and int(status.get("Status", 0)) in (0xFF00, 0xFF01) and found is not None:
                count += 1
                if found.get("SOPClassUID"):
                    kinds[str(found.SOPClassUID)] = None
    finally:
        if assoc.is_established:
            assoc.release()
    return list(kinds), count


@dataclass
class RetrieveResult:
    """What a fetch brought: per study, the batch of images kept (as the receiver's)."""

    node: PacsNode
    batches: list[Batch] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def stored(self) -> list[Path]:
        return [path for batch in self.batches for path in batch.stored]

    @property
    def folders(self) -> list[Path]:
        return sorted({folder for batch in self.batches for folder in batch.folders})

    def summary(self) -> str:
        count, already = len(self.stored), sum(batch.duplicates for batch in self.batches)
        parts = [f"{count} image{'s' if count != 1 else ''} fetched from {self.node}"]
        if already:
            parts.append(f"{already} already here")
        if self.problems:
            parts.append(f"{len(self.problems)} not fetched")
        return "; ".join(parts)


def retrieve_job(node: PacsNode, study_uids: Sequence[str], folder: Path,
                 timeout: float = DEFAULT_TIMEOUT_S) -> Job[RetrieveResult]:
    """Fetch each study (C-GET) into ``folder`` (patient / study / series / instance, as received studies are
    kept); yields ``Progress`` as images arrive, so a cancellation stops after the image under way (those kept
    stay, each whole). A study the PACS cannot give is a problem line; not reaching it is ``PacsError``."""
    from pydicom.dataset import Dataset
    from pynetdicom import build_role, evt
    from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet  # type: ignore[attr-defined]

    result = RetrieveResult(node)
    for study_uid in study_uids:
        kinds, expected = _kinds_in_study(node, study_uid, timeout)
        if not kinds:
            result.problems.append(f"study {study_uid}: the PACS lists no images in it")
            continue
        per_kind = max(1, (MAX_CONTEXTS - 1) // len(kinds))
        contexts: list[tuple[str, Sequence[str]]] = [(StudyRootQueryRetrieveInformationModelGet,
                                                      ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"])]
        for kind in kinds:
            # each encoding in a context of its own: the PACS picks the one its image is kept in
            contexts += [(kind, [syntax]) for syntax in RETRIEVE_SYNTAXES[:per_kind]]
        batch = Batch(node.ae_title, node.host)
        arrived: list[int] = []

        def on_store(event: Any, batch: Batch = batch, arrived: list[int] = arrived) -> int:
            arrived.append(1)
            return keep_instance(event, folder, batch)

        roles = [build_role(kind, scp_role=True) for kind in kinds]
        assoc = associate(node, contexts, timeout, roles=roles, handlers=[(evt.EVT_C_STORE, on_store)])
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        final = None
        try:
            for status, _identifier in assoc.send_c_get(query, StudyRootQueryRetrieveInformationModelGet):
                if status is not None and "Status" in status:
                    final = int(status.Status)
                yield Progress(len(arrived), expected, f"study {study_uid[-12:]}")
        finally:
            if assoc.is_established:
                assoc.release()
        result.batches.append(batch)
        if final is None:
            result.problems.append(f"study {study_uid}: the PACS did not answer within {timeout:g} s")
        elif final not in (0x0000, 0xFF00):
            missing = max(0, expected - len(batch.stored) - batch.duplicates)
            result.problems.append(f"study {study_uid}: the PACS could not give {missing or 'some'} of its "
                                   f"{expected} images (status 0x{final:04X})")
        result.problems.extend(f"study {study_uid}: {reason}" for reason in batch.refused)
    return result


__all__ = ["RETRIEVE_SYNTAXES", "RetrieveResult", "StudyMatch", "find_studies", "find_studies_job", "retrieve_job"]
