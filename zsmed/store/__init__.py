"""The site's local case log (one SQLite file): which model said what about which image, what the
reader decided, and how often they agreed. See ``zsmed.store.caselog``."""

from zsmed.store.caselog import (
    CaseLog,
    ModelRecord,
    ModelStats,
    PredictionRecord,
    ReviewRecord,
    SimilarCase,
    VerifyResult,
    open_case_log,
)
from zsmed.store.schema import SCHEMA_VERSION

__all__ = [
    "SCHEMA_VERSION",
    "CaseLog",
    "ModelRecord",
    "ModelStats",
    "PredictionRecord",
    "ReviewRecord",
    "SimilarCase",
    "VerifyResult",
    "open_case_log",
]
