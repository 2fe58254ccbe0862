"""De-identified copies of DICOM studies (a teaching file, a research colleague, a multidisciplinary
meeting), as PACS viewers' "export anonymised" does.

The well-kept MIT library dicognito does the replacing; zsmed adds what it leaves. For each image:

* **replaced by dicognito** (consistently within one export: one ``Anonymizer`` for all its files, so
  a study keeps one new Study Instance UID and a patient one new name and ID): every person name (PN),
  the patient's and the order's IDs (Patient ID, Other Patient IDs, Accession Number, Study ID,
  Requested Procedure ID, placer/filler order numbers, procedure step IDs), Station Name, Issuer of
  Patient ID, the institution's name and department (made-up values), every
  UID except class UIDs (SOP Class, Referenced SOP Class...) and the Transfer Syntax UID (references
  inside the export stay valid). dicognito also removes Branch of Service, Occupation, Medical Record
  Locator, Military Rank, insurance plans, religious preference, telephone numbers and the patient's
  photo (zsmed's list below names them too), and blanks Requesting Service and Current Patient
  Location. An empty value stays empty (dicognito alone gives every empty ID one same made-up value).
* **dates**: every date and date-time (DA, DT; a DA's paired TM with it) moved back by one whole number
  of days (62 to 730), the same for the whole export, so every interval (age at the study, days between
  studies) is kept exactly and times of day are unchanged (DICOM's "Retain Longitudinal Temporal
  Information with Modified Dates"). A date that cannot be parsed is emptied.
* **device identifiers**: Device Serial Number and Detector ID replaced by pseudonyms (one device, one
  pseudonym); other device identifiers removed (below).
* **removed by zsmed** (after PS3.15 Table E.1-1, Basic Application Level Confidentiality Profile):
  every private element; every element whose value representation is free text or unknown (LT, ST,
  UT, UN: comments, histories, addresses, interpretations), every AE title; the free-text and
  identifying LO/SH/SQ elements of ``REMOVED_KEYWORDS`` (reasons for the study, requested and
  performed procedure descriptions, admitting diagnoses, medical alerts, allergies, ethnic group,
  physicians' and operators' identification sequences, the request attributes, other patient IDs and
  names, the patient's address, region and country of residence, the institution's address,
  device, gantry, cassette and plate IDs, digital signatures, the original attributes sequence, icon
  images...), curves (50xx) and overlays (60xx, which can carry drawn names), the clinical-trial and
  GPS elements.
* **kept**: Study Description, Series Description, Protocol Name and Body Part Examined (a teaching
  file needs them), Contrast/Bolus Agent, the patient's age, sex, size and weight (DICOM's "Retain
  Patient Characteristics"), manufacturer, model and software versions, every acquisition and image
  parameter, Burned In Annotation, and the pixel data, byte for byte (transfer syntax unchanged). Any
  kept text element (LO, SH, UC) that contains one of the original names, IDs, the birth date or the
  institution's name is emptied and said in the notes; other free text typed into a description is the
  reader's to check.
* **set**: Patient Identity Removed YES (NO where text may be burned into the pixels, see below),
  Longitudinal Temporal Information Modified MODIFIED, De-identification Method (dicognito's
  "DICOGNITO" and zsmed's plain statement of the above) and its code sequence: DCM 113100 Basic
  Application Confidentiality Profile, 113105 Clean Descriptors Option (the kept descriptions, cleaned
  as above: the Basic Profile alone would remove them), 113107 Retain Longitudinal Temporal Information
  Modified Dates Option and 113108 Retain Patient Characteristics Option.

Only images are exported (objects with pixel data): structured reports, encapsulated PDFs, presentation
states and other objects without an image carry free text or drawn text that no rule can check, and
are left out (counted in the notes). **Text burned into the pixels** is found by no rule: an image whose
Burned In Annotation is YES, or that is of a kind that commonly carries burned-in text (ultrasound US,
secondary capture SC or a Secondary Capture SOP class, photograph XC, endoscopy ES, other OT) unless
it says NO, gets Patient Identity Removed NO and a note asking the reader to check it, unless a
``Blanking`` names areas to blank on such images (everything outside an ultrasound image's regions,
where an ultrasound machine prints the name and ID; fixed boxes such as a capture station's header
band; ``zsmed.dicom.burned_in``): then those areas are set to black on every frame, the pixel data is
written uncompressed, Burned In Annotation becomes NO, Patient Identity Removed YES and DCM 113101 Clean
Pixel Data Option is claimed, with the reader told to check the rest of each image. Other images keep
their pixel data byte for byte. This is not a certified de-identification profile: the descriptions
are kept, text typed over the scan area itself is not found, and faces in 3D reconstructions are not
touched.

No mapping from the original identifiers to the new ones is written anywhere, on purpose: such a
mapping would re-identify the export (a ``seed`` makes the new values repeatable, so whoever holds both
the seed and the originals can recompute them: a seed is as secret as the originals). The output
names come from de-identified values only:
``<out>/<new Patient ID>/<new Study Date or 'study'>_<n>/<Modality>_<Series Number>/IM0001.dcm``.

``deidentify_dataset`` de-identifies one data set in place; ``deidentify_job`` writes a whole export
(a job: yields ``Progress``, returns ``DeidentifyResult``); ``deidentify_paths_job`` first expands
folders and DICOMDIRs.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed.dicom.burned_in import Box, areas_to_blank, blank_dataset, describe_boxes
from zsmed.dicom.ultrasound import regions_fit
from zsmed.errors import DicomReadError, ZsmedError
from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from dicognito.anonymizer import Anonymizer
    from pydicom.dataset import Dataset

# --- the policy ------------------------------------------------------------------------------------
# LO/SH/SQ (and a few other) elements that PS3.15 Table E.1-1 removes (X) and dicognito does not
# replace: free text about the patient or the order, identification sequences, device identifiers,
# signatures and the record of original values. LT/ST/UT/UN/AE elements go by their VR (below).
REMOVED_KEYWORDS = frozenset({
    # the patient
    "OtherPatientIDsSequence", "OtherPatientIDs", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
    "PatientBirthTime", "PatientAddress", "RegionOfResidence", "CountryOfResidence", "EthnicGroup",
    "PatientInstitutionResidence", "PatientTransportArrangements", "PatientState", "SpecialNeeds", "MedicalAlerts",
    "Allergies", "PreMedication", "AdmissionID", "IssuerOfAdmissionID", "IssuerOfAdmissionIDSequence",
    "AdmittingDiagnosesDescription", "AdmittingDiagnosesCodeSequence", "AdmittingDate", "AdmittingTime",
    "DischargeDiagnosisDescription", "ServiceEpisodeID", "ServiceEpisodeDescription", "IssuerOfServiceEpisodeID",
    "IssuerOfServiceEpisodeIDSequence", "ReferencedPatientAliasSequence", "ReferencedPatientSequence",
    "InsurancePlanIdentification", "PatientPrimaryLanguageCodeSequence", "PatientPrimaryLanguageModifierCodeSequence",
    "ResponsiblePerson", "ResponsiblePersonRole", "ConfidentialityConstraintOnPatientDataDescription",
    "LastMenstrualDate", "IssuerOfPatientIDQualifiersSequence", "BranchOfService", "Occupation", "MedicalRecordLocator",
    "MilitaryRank", "PatientInsurancePlanCodeSequence", "PatientReligiousPreference", "PatientTelecomInformation",
    "PatientTelephoneNumbers", "ReferencedPatientPhotoSequence", "ResponsibleOrganization",
    # physicians, operators and other people
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "ReferringPhysicianIdentificationSequence",
    "ConsultingPhysicianIdentificationSequence", "PhysiciansOfRecordIdentificationSequence",
    "PerformingPhysicianIdentificationSequence", "PhysiciansReadingStudyIdentificationSequence",
    "OperatorIdentificationSequence", "NamesOfIntendedRecipientsOfResults",
    "IntendedRecipientsOfResultsIdentificationSequence", "OrderEnteredBy", "OrderEntererLocation",
    "OrderCallbackPhoneNumber", "OrderCallbackTelecomInformation", "PersonAddress", "PersonTelephoneNumbers",
    "PersonTelecomInformation", "HumanPerformerOrganization", "HumanPerformerName", "ActualHumanPerformersSequence",
    "ContentCreatorIdentificationCodeSequence", "AuthorObserverSequence", "ParticipantSequence",
    "CustodialOrganizationSequence",
    # the institution (its name and department are replaced by dicognito)
    "InstitutionAddress", "InstitutionCodeSequence", "InstitutionalDepartmentTypeCodeSequence",
    # the order and the procedure steps
    "RequestAttributesSequence", "RequestedProcedureDescription", "RequestedProcedureComments",
    "RequestedProcedureLocation", "RequestedContrastAgent", "ReasonForStudy", "ReasonForTheRequestedProcedure",
    "ReasonForTheImagingServiceRequest", "ReasonForRequestedProcedureCodeSequence", "ReasonForVisit",
    "ReasonForVisitCodeSequence", "ImagingServiceRequestComments", "PerformedProcedureStepDescription",
    "CommentsOnThePerformedProcedureStep", "ScheduledProcedureStepDescription", "ScheduledProcedureStepLocation",
    "ScheduledStudyLocation", "PerformedLocation", "PerformedStationName", "PerformedStationNameCodeSequence",
    "PerformedStationGeographicLocationCodeSequence", "ScheduledStationName", "ScheduledStationNameCodeSequence",
    "ScheduledStationGeographicLocationCodeSequence", "StudyIDIssuer", "RequestedSeriesDescription",
    "ModifiedImageDescription",
    # comments and other free text
    "PatientComments", "AdditionalPatientHistory", "ImageComments", "StudyComments", "FrameComments",
    "AcquisitionComments", "VisitComments", "TextComments", "TextString", "Impressions", "ResultsComments",
    "IdentifyingComments", "ImagePresentationComments", "DerivationDescription", "CommentsOnRadiationDose",
    "AcquisitionProtocolDescription", "AcquisitionDeviceProcessingDescription", "ContributionDescription",
    "TopicTitle", "TopicSubject", "TopicAuthor", "TopicKeywords", "LabelText", "BarcodeValue",
    "AnnotationGroupDescription", "Arbitrary",
    # device identifiers
    "GantryID", "GeneratorID", "CassetteID", "PlateID", "DeviceDescription", "LongDeviceDescription",
    "UniqueDeviceIdentifier", "UDISequence", "TransducerIdentificationSequence", "XRayDetectorID",
    "XRayDetectorLabel", "XRaySourceID", "SourceSerialNumber", "ModifyingDeviceID", "LensMake", "LensModel",
    "LensSerialNumber", "LensSpecification", "CameraOwnerName", "MakerNote", "DeviceSettingDescription",
    # signatures, the record of original values, the icon (a thumbnail with its own burned-in text)
    "OriginalAttributesSequence", "ModifiedAttributesSequence", "NonconformingModifiedAttributesSequence",
    "DigitalSignaturesSequence", "MACParametersSequence", "ReferencedDigitalSignatureSequence",
    "ReferencedSOPInstanceMACSequence", "EncryptedAttributesSequence", "IconImageSequence", "DataSetTrailingPadding",
    "TimezoneOffsetFromUTC", "InstanceOriginStatus", "StorageMediaFileSetID", "SourceOfPreviousValues",
    "ModifyingSystem",
})
# Keyword families removed whole: the clinical-trial identification (sponsor, site, subject IDs), the
# retired Results/Interpretation module (report text and its authors) and a photograph's GPS position.
REMOVED_PREFIXES = ("ClinicalTrial", "IssuerOfClinicalTrial", "EthicsCommittee", "Interpretation", "GPS")
# Value representations that are free text, unknown bytes or network names: removed wherever they are.
REMOVED_VRS = frozenset({"LT", "ST", "UT", "UN", "AE"})
# Kept on purpose (a teaching file needs them); emptied only when they contain an original identifier.
KEPT_DESCRIPTIONS = ("StudyDescription", "SeriesDescription", "ProtocolName", "BodyPartExamined")
# Device identifiers replaced by a pseudonym (one device, one pseudonym) rather than removed: Type 1 in
# the enhanced equipment module.
PSEUDONYMISED_DEVICE_IDS = ("DeviceSerialNumber", "DetectorID")
# What dicognito puts in (its pseudonyms), and the equipment: never searched for original identifiers.
_REPLACED_KEYWORDS = frozenset({
    "PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "RequestedProcedureID", "ScheduledProcedureStepID",
    "PerformedProcedureStepID", "PlacerOrderNumberImagingServiceRequest", "FillerOrderNumberImagingServiceRequest",
    "PlacerOrderNumberImagingServiceRequestRetired", "FillerOrderNumberImagingServiceRequestRetired",
    "PlacerOrderNumberProcedure", "FillerOrderNumberProcedure", "StationName", "IssuerOfPatientID",
    "InstitutionName", "InstitutionalDepartmentName", "DeidentificationMethod", *PSEUDONYMISED_DEVICE_IDS,
    # the equipment's maker and model: a hospital may bear its scanner maker's name ("TOSHIBA")
    "Manufacturer", "ManufacturerModelName", "SoftwareVersions",
})
_SEARCHED_VRS = frozenset({"LO", "SH", "UC"})
# Name parts too common to search for (titles, suffixes): "MR" must not empty "MR BRAIN".
_NAME_AFFIXES = frozenset({"DR", "MR", "MRS", "MS", "MISS", "PROF", "MD", "PHD", "JR", "SR", "II", "III", "IV"})

DATE_SHIFT_DAYS = (62, 730)  # dicognito's range, in whole days

# Kinds of image that commonly carry text burned into their pixels (singular, plural).
BURNED_IN_MODALITIES = {
    "US": ("ultrasound image", "ultrasound images"),
    "SC": ("secondary capture", "secondary captures"),
    "XC": ("photograph", "photographs"),
    "ES": ("endoscopy image", "endoscopy images"),
    "OT": ("image of modality OT (other)", "images of modality OT (other)"),
}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_MARKED_BURNED_IN = ("image marked as having burned-in text", "images marked as having burned-in text")
_SKIP_NAMES = frozenset({"thumbs.db", ".ds_store", "desktop.ini"})
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                               *(f"LPT{i}" for i in range(10))})
_TEMP_PREFIX = ".zsmed-deid-"


def _codes(pixels_cleaned: bool = False) -> list[tuple[str, str]]:
    """(code value, meaning) of the DCM codes this export claims, from pydicom's DCM dictionary."""
    from pydicom.sr.codedict import codes

    # 113105: the descriptions are kept and cleaned (emptied where they hold an original identifier);
    # without the option, keeping them would not be the Basic Profile
    claimed = [codes.DCM.BasicApplicationConfidentialityProfile,
               codes.DCM.CleanDescriptorsOption,
               codes.DCM.RetainLongitudinalTemporalInformationModifiedDatesOption,
               codes.DCM.RetainPatientCharacteristicsOption]
    if pixels_cleaned:  # the areas the reader chose were blanked (zsmed.dicom.burned_in)
        claimed.insert(1, codes.DCM.CleanPixelDataOption)
    return [(code.value, code.meaning) for code in claimed]


def method_statement(pixels_cleaned: bool = False) -> list[str]:
    """The plain statement of what was done, as De-identification Method values (LO: 64 characters
    each)."""
    from dicognito import __version__ as dicognito_version

    from zsmed import __version__

    return [
        f"zsmed {__version__} with dicognito {dicognito_version}",
        "names, IDs, addresses, institution, device IDs replaced",
        "UIDs remapped; dates moved back by one whole-day offset",
        "private tags, comments and free-text elements removed",
        "descriptions kept; emptied if holding a name or an ID",
        ("burned-in text blanked in areas the reader chose" if pixels_cleaned
         else "pixel data unchanged: burned-in text not removed"),
    ]


# --- one data set ----------------------------------------------------------------------------------
def _whole_day_dates(days: int) -> Any:
    """dicognito's date/time handler moving every DA/DT back by ``days`` whole days (intervals and
    times of day kept exactly); a date it cannot parse is emptied rather than kept."""
    from dicognito.datetimeanonymizer import DateTimeAnonymizer
    from dicognito.element_anonymizer import ElementAnonymizer

    class WholeDayDates(ElementAnonymizer):
        def __init__(self) -> None:
            self._shift = DateTimeAnonymizer(-24 * days)

        def __call__(self, dataset: Any, data_element: Any) -> bool:
            try:
                return bool(self._shift(dataset, data_element))
            except (ValueError, TypeError, OverflowError):
                data_element.value = ""
                return True

        def describe_actions(self) -> Iterator[str]:
            yield f"Move every DA and DT back by {days} whole days (unparseable dates emptied)"

    return WholeDayDates()


def _empty_stays_empty() -> Any:
    """A handler leaving empty values as they are: dicognito would give every empty ID the same
    made-up value (one Accession Number for unrelated studies, one Patient ID for every patient
    without one)."""
    from dicognito.element_anonymizer import ElementAnonymizer

    class EmptyStaysEmpty(ElementAnonymizer):
        def __call__(self, dataset: Any, data_element: Any) -> bool:
            value = data_element.value
            return data_element.VR != "SQ" and (value is None or (hasattr(value, "__len__") and len(value) == 0))

        def describe_actions(self) -> Iterator[str]:
            yield "Leave empty elements empty"

    return EmptyStaysEmpty()


def _prepare(anonymizer: Anonymizer, seed: str | None) -> None:
    """Add zsmed's handlers to a dicognito ``Anonymizer``: empty values left empty, dates moved by
    whole days, device serial numbers and detector IDs pseudonymised."""
    from dicognito.idanonymizer import IDAnonymizer
    from dicognito.randomizer import Randomizer

    low, high = DATE_SHIFT_DAYS
    if seed is None:
        days = low + secrets.randbelow(high - low + 1)
    else:
        digest = hashlib.sha256(f"zsmed date offset\x00{seed}".encode()).digest()
        days = low + int.from_bytes(digest[:8], "big") % (high - low + 1)
    anonymizer.add_element_handler(IDAnonymizer(Randomizer(seed), "", "", *PSEUDONYMISED_DEVICE_IDS))
    anonymizer.add_element_handler(_whole_day_dates(days))
    anonymizer.add_element_handler(_empty_stays_empty())
    anonymizer._zsmed_shift_days = days  # type: ignore[attr-defined]  # marks it as prepared


def new_anonymizer(seed: str | None = None) -> Anonymizer:
    """One dicognito ``Anonymizer`` for one export, with zsmed's handlers (``_prepare``). The same
    ``seed`` gives the same pseudonyms, UIDs and date offset (re-exporting more images of a case);
    without one, all are random."""
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed=seed)
    _prepare(anonymizer, seed)
    return anonymizer


def date_shift_days(anonymizer: Anonymizer) -> int | None:
    """How many whole days ``new_anonymizer``'s dates move back (None for a plain dicognito one)."""
    days = getattr(anonymizer, "_zsmed_shift_days", None)
    return days if isinstance(days, int) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _values(element: Any) -> list[str]:
    """An element's values as text (a multi-valued one, one per value)."""
    from pydicom.multival import MultiValue

    value = element.value
    if value is None:
        return []
    if isinstance(value, MultiValue | list | tuple):
        return [_text(v) for v in value]
    return [_text(value)]


def _identifiers(ds: Dataset) -> list[str]:
    """The original strings that must not survive in kept text: every part of every person name, the
    patient's IDs and accession number, the birth date and the institution's name."""
    found: set[str] = set()
    for element in ds.iterall():
        keyword = element.keyword
        try:
            if element.VR == "PN":
                for name in _values(element):
                    for part in re.split(r"[\^=\s,]+", name):
                        part = part.strip(".'-")
                        if len(part) >= 2 and part.upper() not in _NAME_AFFIXES:
                            found.add(part)
            elif keyword in ("PatientID", "OtherPatientIDs", "AccessionNumber", "MedicalRecordLocator", "AdmissionID",
                             "PatientBirthDate", "InstitutionName"):
                found.update(v.strip() for v in _values(element) if len(v.strip()) >= 3)
        except Exception:  # one value that cannot be decoded: the others still count
            continue
    return sorted(found, key=len, reverse=True)


def _identifier_pattern(identifiers: list[str]) -> re.Pattern[str] | None:
    if not identifiers:
        return None
    alternatives = "|".join(re.escape(i) for i in identifiers)
    return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)


def _removed(element: Any) -> bool:
    tag = element.tag
    group = tag.group
    if tag.is_private or element.VR in REMOVED_VRS:
        return True
    if 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF:  # curves, overlays
        return True
    keyword = element.keyword
    return bool(keyword) and (keyword in REMOVED_KEYWORDS or keyword.startswith(REMOVED_PREFIXES))


def _strip(ds: Dataset) -> None:
    """Remove, at every depth, what ``_removed`` names."""

    def visit(dataset: Any, element: Any) -> None:
        if _removed(element):
            del dataset[element.tag]

    ds.walk(visit)


def _clear_identifiers(ds: Dataset, pattern: re.Pattern[str] | None) -> list[str]:
    """Empty the kept text elements that contain an original identifier; their keywords."""
    if pattern is None:
        return []
    cleared: list[str] = []

    def visit(dataset: Any, element: Any) -> None:
        if element.VR not in _SEARCHED_VRS or element.keyword in _REPLACED_KEYWORDS:
            return
        if any(pattern.search(v) for v in _values(element)):
            element.value = ""
            cleared.append(element.keyword or str(element.tag))

    ds.walk(visit)
    return cleared


def burned_in_kind(ds: Dataset) -> tuple[str, str] | None:
    """(singular, plural) naming the kind of image when text may be burned into its pixels: Burned In
    Annotation YES, or US/SC/XC/ES/OT or a Secondary Capture SOP class unless it says NO."""
    flag = _text(ds.get("BurnedInAnnotation", "")).strip().upper()
    if flag == "NO":
        return None
    modality = _text(ds.get("Modality", "")).strip().upper()
    if modality in BURNED_IN_MODALITIES:
        return BURNED_IN_MODALITIES[modality]
    sop_class = _text(ds.get("SOPClassUID", ""))
    if sop_class == _SECONDARY_CAPTURE or sop_class.startswith(_SECONDARY_CAPTURE + "."):
        return BURNED_IN_MODALITIES["SC"]
    if flag == "YES":
        return _MARKED_BURNED_IN
    return None


def _record_method(ds: Dataset, pixels_cleaned: bool = False) -> None:
    from pydicom.dataset import Dataset as PydicomDataset
    from pydicom.sequence import Sequence

    existing = [v for v in _values(ds["DeidentificationMethod"]) if v] if "DeidentificationMethod" in ds else []
    ds.DeidentificationMethod = existing + [line for line in method_statement(pixels_cleaned) if line not in existing]
    items = list(ds.get("DeidentificationMethodCodeSequence") or [])
    present = {(_text(item.get("CodingSchemeDesignator")), _text(item.get("CodeValue"))) for item in items}
    for value, meaning in _codes(pixels_cleaned):
        if ("DCM", value) not in present:
            item = PydicomDataset()
            item.CodeValue = value
            item.CodingSchemeDesignator = "DCM"
            item.CodeMeaning = meaning
            items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)


@dataclass(frozen=True)
class Blanking:
    """Areas of the pixels to blank on the images that may carry burned-in text (``burned_in_kind``):
    outside the ultrasound regions where an image has them, and fixed boxes (``zsmed.dicom.burned_in``).
    Other images (CT, MR...) keep their pixel data byte for byte."""

    outside_ultrasound: bool = False
    boxes: tuple[Box, ...] = ()
    found_text: bool = False  # also the words OCR finds (``zsmed.dicom.text_in_pixels``), wherever they are

    def __bool__(self) -> bool:
        return self.outside_ultrasound or bool(self.boxes) or self.found_text


BLANKED_NOTE = "burned-in text blanked"
FOUND_TEXT_NOTE = "text found in the pixels by OCR"
REGIONS_MISFIT_NOTE = "its ultrasound regions reach past the image"


def deidentify_dataset(ds: Dataset, anonymizer: Anonymizer, blanking: Blanking | None = None,
                       path: str | None = None) -> list[str]:
    """De-identify ``ds`` in place (see the module's docstring for exactly what); return notes, one
    line each: kept text emptied because it held an identifier, and "text burned into the pixels is not
    removed" for the kinds of image that may carry it, or "burned-in text blanked (...)" where
    ``blanking`` gave areas for it. ``anonymizer`` should come from ``new_anonymizer`` (a plain
    dicognito one is given zsmed's handlers here)."""
    from pydicom.dataset import FileMetaDataset

    if date_shift_days(anonymizer) is None:
        _prepare(anonymizer, None)
    notes: list[str] = []
    pattern = _identifier_pattern(_identifiers(ds))
    ds.remove_private_tags()
    _strip(ds)  # before dicognito too: it need not parse what goes anyway
    if getattr(ds, "file_meta", None) is None:
        ds.file_meta = FileMetaDataset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's value-length warnings on dicognito's replacements
        anonymizer.anonymize(ds)
    _strip(ds)  # dicognito writes a made-up Institution Address
    cleared = _clear_identifiers(ds, pattern)
    if cleared:
        names = sorted(set(cleared))
        notes.append(f"{', '.join(names)} emptied: {'it' if len(names) == 1 else 'they'} held the patient's name "
                     "or an identifier")
    kind = burned_in_kind(ds)
    blanked = []
    if kind and blanking:
        areas = areas_to_blank(ds, outside_ultrasound=blanking.outside_ultrasound, boxes=blanking.boxes)
        blanked = blank_dataset(ds, areas, path=path)
        if blanking.found_text:
            from zsmed.dicom.text_in_pixels import blank_found_text, boxes_to_blank

            words = blank_found_text(ds, path=path)
            blanked += boxes_to_blank(words, int(ds.Rows), int(ds.Columns))
            # the words themselves are not repeated: the notes are printed and kept in logs
            notes.append(f"{FOUND_TEXT_NOTE}: {len(words)} word{'s' if len(words) != 1 else ''}" if words
                         else f"{FOUND_TEXT_NOTE}: none")
        if blanking.outside_ultrasound and regions_fit(ds) is False:
            notes.append(f"{REGIONS_MISFIT_NOTE} (set for another size of it): not blanked around them")
    if blanked:
        # the reader chose where the text is; elsewhere in the image is theirs to check (said in the notes)
        ds.BurnedInAnnotation = "NO"
        kind = None
        notes.append(f"{BLANKED_NOTE} ({describe_boxes(blanked)}); pixel data written uncompressed")
    ds.PatientIdentityRemoved = "NO" if kind else "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    _record_method(ds, pixels_cleaned=bool(blanked))
    if kind:
        notes.append(f"text burned into the pixels is not removed ({kind[0]})")
    return notes


# --- an export -------------------------------------------------------------------------------------
@dataclass
class DeidentifyResult:
    """What an export wrote: the files, the problems (one line each, naming the file) and the notes
    (burned-in warnings and what was skipped, with counts)."""

    out_dir: Path
    written: int = 0
    files: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    burned_in: dict[str, int] = field(default_factory=dict)  # plural kind -> images
    blanked: int = 0  # images whose burned-in text was blanked
    patients: int = 0
    studies: int = 0
    series: int = 0

    def summary(self, where: str | None = None) -> str:
        """One line: "12 files exported de-identified to teaching: 1 patient, 2 studies, 3 series; 3
        ultrasound images may have names burned into their pixels: check them"."""
        place = where if where is not None else str(self.out_dir)
        if self.written:
            head = (f"{_count(self.written, 'file', 'files')} exported de-identified to {place}: "
                    f"{_count(self.patients, 'patient', 'patients')}, {_count(self.studies, 'study', 'studies')}, "
                    f"{_count(self.series, 'series', 'series')}")
        else:
            head = f"Nothing exported to {place}"
        parts = [head, *self.notes]
        if self.problems:
            parts.append(f"{_count(len(self.problems), 'file', 'files')} could not be exported")
        return "; ".join(parts)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def safe_name(text: str, default: str) -> str:
    """A folder or file name from a (de-identified) value: letters, digits, '.', '-' and '_' only,
    at most 40 characters, never empty, never a Windows device name."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-._")[:40].rstrip("-._")
    if not name:
        return default
    return f"{name}_" if name.upper() in _WINDOWS_RESERVED else name


class _Layout:
    """Where each image goes: ``<patient>/<date>_<n>/<modality>_<series number>/IM0001.dcm``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.studies: dict[tuple[str, str], Path] = {}
        self.study_count: dict[str, int] = {}
        self.series: dict[tuple[str, str, str], Path] = {}
        self.images: dict[Path, int] = {}

    def target(self, ds: Dataset) -> Path:
        patient = safe_name(_text(ds.get("PatientID", "")), "patient")
        study_uid = _text(ds.get("StudyInstanceUID", ""))
        study_key = (patient, study_uid)
        if study_key not in self.studies:
            number = self.study_count[patient] = self.study_count.get(patient, 0) + 1
            date = safe_name(_text(ds.get("StudyDate", "")), "study")
            self.studies[study_key] = self.root / patient / f"{date}_{number}"
        study_dir = self.studies[study_key]
        series_key = (patient, study_uid, _text(ds.get("SeriesInstanceUID", "")))
        if series_key not in self.series:
            modality = safe_name(_text(ds.get("Modality", "")), "OT")
            base = f"{modality}_{safe_name(_text(ds.get('SeriesNumber', '')), '0')}"
            taken = {p for p in self.series.values() if p.parent == study_dir}
            name, k = base, 2
            while study_dir / name in taken:
                name, k = f"{base}_{k}", k + 1
            self.series[series_key] = study_dir / name
        folder = self.series[series_key]
        self.images[folder] = self.images.get(folder, 0) + 1
        return folder / f"IM{self.images[folder]:04d}.dcm"

    @property
    def counts(self) -> tuple[int, int, int]:
        return len(self.study_count), len(self.studies), len(self.series)


def _file_meta(ds: Dataset, transfer_syntax: str | None) -> Any:
    """New file meta: the same transfer syntax, the new SOP Instance UID; nothing else carried over
    (the sending and source AE titles would name the hospital's machines)."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import (
        PYDICOM_IMPLEMENTATION_UID,
        UID,
        ExplicitVRBigEndian,
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
    )

    from zsmed import __version__

    if transfer_syntax:
        syntax = UID(transfer_syntax)
    else:  # a file without file meta (ACR-NEMA style): the encoding it was read with
        implicit, little = getattr(ds, "original_encoding", (True, True))
        syntax = (ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian) if little else ExplicitVRBigEndian
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = syntax
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"ZSMED_{__version__}"[:16]
    return meta


class _TargetExists(Exception):
    pass


def write_new_file(ds: Dataset, target: Path) -> None:
    """Write ``ds`` as a DICOM file at ``target``, all at once (a temporary file in the same folder,
    then linked or renamed into place) and never over an existing file (``FileExistsError``)."""
    from pydicom import dcmwrite

    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(target):
        raise FileExistsError(target)
    fd, tmp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dcmwrite(handle, ds, enforce_file_format=True)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, target)  # fails when the target exists: nothing is ever overwritten
        except FileExistsError:
            raise
        except OSError:  # no hard links here (FAT/exFAT sticks): check, then rename
            if os.path.lexists(target):
                raise FileExistsError(target) from None
            os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class _Export:
    """One export's state: the one ``Anonymizer``, the layout, what was seen and skipped."""

    def __init__(self, out: Path, seed: str | None, blanking: Blanking | None = None) -> None:
        self.anonymizer = new_anonymizer(seed)
        self.blanking = blanking
        self.layout = _Layout(out)
        self.result = DeidentifyResult(out_dir=out)
        self.seen: set[str] = set()
        self.skipped = {"dicomdir": 0, "no image": 0, "duplicate": 0, "emptied": 0, "regions misfit": 0,
                        "text found": 0, "no text found": 0}

    def file(self, path: str) -> None:
        """Read, de-identify and write one file; a problem raises (a one-line reason)."""
        from zsmed.dicom.decode import has_pixels, is_dicomdir, open_dataset, transfer_syntax

        ds, _notes = open_dataset(path)
        if is_dicomdir(ds):
            self.skipped["dicomdir"] += 1
            return
        if not has_pixels(ds):
            self.skipped["no image"] += 1
            return
        original_uid = _text(ds.get("SOPInstanceUID", ""))
        if not original_uid or not ds.get("SOPClassUID"):
            raise DicomReadError("no SOP Instance UID or SOP Class UID: not exported", path=path)
        if original_uid in self.seen:  # the same image twice (two copies, a folder and its DICOMDIR)
            self.skipped["duplicate"] += 1
            return
        self.seen.add(original_uid)
        syntax = transfer_syntax(ds)
        notes = deidentify_dataset(ds, self.anonymizer, self.blanking, path)
        blanked = any(note.startswith(BLANKED_NOTE) for note in notes)
        if blanked:
            from pydicom.uid import ExplicitVRLittleEndian

            syntax = ExplicitVRLittleEndian  # the blanked pixels, written back uncompressed
        ds.file_meta = _file_meta(ds, syntax)
        target = self.layout.target(ds)
        try:
            write_new_file(ds, target)
        except FileExistsError:
            raise _TargetExists(f"{path}: {target} already exists: not overwritten") from None
        result = self.result
        result.written += 1
        result.files.append(target)
        kind = burned_in_kind(ds)
        if kind:
            result.burned_in[kind[1]] = result.burned_in.get(kind[1], 0) + 1
        result.blanked += blanked
        self.skipped["regions misfit"] += any(note.startswith(REGIONS_MISFIT_NOTE) for note in notes)
        searched = [note for note in notes if note.startswith(FOUND_TEXT_NOTE)]
        if searched:
            self.skipped["no text found" if searched[0].endswith(": none") else "text found"] += 1
        if any(" emptied: " in note for note in notes):
            self.skipped["emptied"] += 1

    def finish(self) -> DeidentifyResult:
        result = self.result
        result.patients, result.studies, result.series = self.layout.counts
        result.notes = _result_notes(result.burned_in, self.skipped, result.blanked)
        return result


def deidentify_job(files: Iterable[str | Path], out_dir: str | Path, *, seed: str | None = None,
                   blanking: Blanking | None = None) -> Job[DeidentifyResult]:
    """Export ``files`` de-identified into ``out_dir`` with one ``Anonymizer`` (a study keeps one new
    Study Instance UID, a patient one new name and ID); yields ``Progress`` after each file, so a
    cancellation stops between files (each file is written whole or not at all). A file that is not
    DICOM, cannot be read or written, or whose target exists is one problem line (file and reason)
    and the others go on; DICOMDIRs, objects without an image and a second copy of an instance are
    skipped (counted in the notes). ``blanking`` names areas blanked on the images that may carry
    burned-in text; where it asks for the text OCR finds, ``OcrUnavailableError`` before anything is
    written when the OCR program is not installed. Returns the ``DeidentifyResult``."""
    from zsmed.dicom.decode import one_line

    if blanking is not None and blanking.found_text:
        from zsmed.dicom.text_in_pixels import require_ocr

        require_ocr()
    paths = [str(p) for p in files]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    export = _Export(out, seed, blanking)
    problems = export.result.problems
    yield Progress(0, len(paths), "")
    for index, path in enumerate(paths):
        try:
            # pydicom's warnings on the source's own malformed values (an IS of '1A') are not the
            # reader's concern here: the file is exported or its one-line problem said
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                export.file(path)
        except _TargetExists as exc:
            problems.append(str(exc))
        except ZsmedError as exc:
            problems.append(f"{path}: {exc.reason}")
        except OSError as exc:
            problems.append(f"{path}: not written ({exc.strerror or one_line(exc)})")
        except Exception as exc:  # pydicom or dicognito on a malformed value: one line, the others go on
            problems.append(f"{path}: cannot be de-identified ({exc.__class__.__name__}: {one_line(exc)})")
        yield Progress(index + 1, len(paths), os.path.basename(path))
    return export.finish()


def _result_notes(burned_in: dict[str, int], skipped: dict[str, int], blanked: int = 0) -> list[str]:
    notes = []
    if blanked:
        notes.append(f"burned-in text blanked on {_count(blanked, 'image', 'images')} (written uncompressed): "
                     "check the rest of each image")
    if skipped.get("regions misfit"):
        n = skipped["regions misfit"]
        notes.append(f"{_count(n, 'ultrasound image has', 'ultrasound images have')} regions reaching past the "
                     "image (set for another size of it): not blanked around them")
    if skipped.get("text found"):
        notes.append(f"OCR found text on {_count(skipped['text found'], 'image', 'images')} and it was blanked")
    if skipped.get("no text found"):
        notes.append(f"OCR found no text on {_count(skipped['no text found'], 'image', 'images')}")
    singular = {plural: one for one, plural in (*BURNED_IN_MODALITIES.values(), _MARKED_BURNED_IN)}
    for plural, n in sorted(burned_in.items()):
        notes.append(f"{n} {singular.get(plural, plural) if n == 1 else plural} may have names burned into "
                     f"{'its' if n == 1 else 'their'} pixels: check {'it' if n == 1 else 'them'}")
    if skipped["emptied"]:
        notes.append(f"a description was emptied in {_count(skipped['emptied'], 'file', 'files')}: "
                     "it held the patient's name or an identifier")
    if skipped["no image"]:
        notes.append(f"{_count(skipped['no image'], 'object', 'objects')} without an image (reports, documents, "
                     "presentation states) not exported: their text cannot be checked")
    if skipped["dicomdir"]:
        notes.append(f"{_count(skipped['dicomdir'], 'DICOMDIR', 'DICOMDIRs')} skipped (the images listed in one are "
                     "exported when given)")
    if skipped["duplicate"]:
        notes.append(f"{_count(skipped['duplicate'], 'second copy', 'second copies')} of an image skipped")
    return notes


def export_inputs(paths: Iterable[str | Path]) -> tuple[list[str], list[str]]:
    """The files an export reads from ``paths``: files as given, folders walked recursively, a
    DICOMDIR's listed files; each file once. Also the problems met (a DICOMDIR's missing files)."""
    from zsmed.dicom.inspect import expand_inputs
    from zsmed.dicom.scan import dicomdir_files

    files: list[str] = []
    problems: list[str] = []
    seen: set[str] = set()
    for item in (str(p) for p in paths):
        if os.path.isdir(item):
            candidates = expand_inputs([item])
        elif os.path.basename(item).upper().startswith("DICOMDIR") and os.path.isfile(item):
            try:
                candidates, missing = dicomdir_files(item)
            except ZsmedError as exc:
                problems.append(f"{item}: DICOMDIR unreadable: {exc.reason}")
                continue
            problems.extend(f"{p.path}: {p.reason}" for p in missing)
        else:
            candidates = [item]
        for path in candidates:
            if os.path.basename(path).lower() in _SKIP_NAMES:
                continue
            key = os.path.realpath(path)
            if key not in seen:
                seen.add(key)
                files.append(path)
    return files, problems


def deidentify_paths_job(paths: Iterable[str | Path], out_dir: str | Path, *, seed: str | None = None,
                         blanking: Blanking | None = None) -> Job[DeidentifyResult]:
    """``deidentify_job`` on what ``export_inputs`` finds in ``paths`` (folders, DICOMDIRs, files)."""
    yield Progress(0, None, "listing files")
    files, problems = export_inputs(paths)
    result = yield from deidentify_job(files, out_dir, seed=seed, blanking=blanking)
    result.problems[:0] = problems
    return result
