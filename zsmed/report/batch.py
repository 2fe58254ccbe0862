"""Reports for a whole run of predictions, as a job (yields ``Progress``; the CLI drives it with a bar,
the app from a worker, both cancel with a ``CancelToken`` between reports)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zsmed.errors import ZsmedError
from zsmed.imageio import is_photo
from zsmed.progress import Job, Progress
from zsmed.report.sr import ModelIdentity, write_result_secondary_capture, write_result_sr


@dataclass
class ReportsWritten:
    reports: list[Path] = field(default_factory=list)
    captures: list[Path] = field(default_factory=list)
    photos: list[str] = field(default_factory=list)  # no DICOM study: no report
    refused: list[str] = field(default_factory=list)  # one line each: the file and why

    def summary(self, out_dir: Path, secondary_capture: bool) -> str:
        extra = f" and {len(self.captures)} secondary captures" if secondary_capture else ""
        return (f"wrote {len(self.reports)} reports{extra} to {out_dir}; "
                f"{len(self.photos)} photos have no DICOM study")


def write_reports_job(results: Sequence[Any], model: ModelIdentity, out_dir: Path, *,
                      secondary_capture: bool = False) -> Job[ReportsWritten]:
    """One SR (and SC) per result that is not an error (runtime ``Prediction``s or anything with the
    same fields); photos are counted, not reported; a file no report can be made for is one line in
    ``refused``. A problem with ``out_dir`` itself stops the job (it would be the same for every file)."""
    done = ReportsWritten()
    todo = [r for r in results if r.error is None]
    yield Progress(0, len(todo), "")
    for i, result in enumerate(todo, 1):
        if is_photo(result.source):
            done.photos.append(str(result.source))
        else:
            fields: dict[str, Any] = dict(probabilities=result.probabilities, label=result.label,
                                          abstain=result.abstain, ood_score=result.ood_score, model=model,
                                          out_dir=out_dir, frame=result.frame)
            try:
                done.reports.append(write_result_sr(result.source, **fields))
                if secondary_capture:
                    done.captures.append(write_result_secondary_capture(result.source, **fields))
            except ZsmedError as exc:
                if exc.path == str(out_dir):
                    raise
                done.refused.append(str(exc))
        yield Progress(i, len(todo), Path(result.source).name)
    return done
