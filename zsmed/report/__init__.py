"""Results back to the PACS as DICOM: a Structured Report per classified image, optionally a
Secondary Capture with the result burned in, and the reader's measurements as a Structured Report.
Never imports torch; highdicom only when writing."""

from zsmed.report.batch import ReportsWritten, write_reports_job
from zsmed.report.measurements import (
    NoPixelSpacingError,
    PixelSpacing,
    RegionMark,
    RulerMark,
    write_measurements_sr,
)
from zsmed.report.sr import (
    ABSTAIN_TEXT,
    NOT_A_DIAGNOSIS,
    ModelIdentity,
    ReaderReview,
    model_identity,
    review_text,
    write_result_secondary_capture,
    write_result_sr,
)

__all__ = ["ABSTAIN_TEXT", "NOT_A_DIAGNOSIS", "ModelIdentity", "NoPixelSpacingError", "PixelSpacing", "ReaderReview",
           "RegionMark", "ReportsWritten", "RulerMark", "model_identity", "review_text", "write_measurements_sr",
           "write_reports_job", "write_result_secondary_capture", "write_result_sr"]
