"""Results back to the PACS as DICOM: a Structured Report per classified image, optionally a
Secondary Capture with the result burned in. Never imports torch; highdicom only when writing."""

from zsmed.report.batch import ReportsWritten, write_reports_job
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

__all__ = ["ABSTAIN_TEXT", "NOT_A_DIAGNOSIS", "ModelIdentity", "ReaderReview", "ReportsWritten", "model_identity",
           "review_text", "write_reports_job", "write_result_secondary_capture", "write_result_sr"]
