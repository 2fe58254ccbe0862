"""zsmed as an AI node beside the PACS (``zsmed serve``): what the PACS sends to this workstation is classified
with a bundle, each result kept in the case log, reported as a DICOM SR (and a Secondary Capture where asked),
and the reports sent back to the PACS, where the radiologist sees them with the study — the way AI results
reach a reading room.

``process_received_job`` does that for one transfer's files (a receiver ``Batch``); each step is the one the
command line and the app already use (``Predictor.predict_files_job``, ``CaseLog.record_predictions``,
``write_reports_job``, ``send_job``), so a result here is the same as ``zsmed predict --log --sr`` and
``zsmed send`` give. Runs without torch, as every bundle does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from zsmed.progress import Job, Progress

if TYPE_CHECKING:
    from zsmed.dicom.commitment import CommittedSend
    from zsmed.dicom.network import PacsNode, SendResult
    from zsmed.report.batch import ReportsWritten
    from zsmed.runtime.predict import Prediction, Predictor
    from zsmed.store.caselog import CaseLog


@dataclass
class NodeOutcome:
    """What became of one transfer: the results, the case-log rows, the reports written and what was sent."""

    results: list[Prediction] = field(default_factory=list)
    logged: list[int] = field(default_factory=list)
    reports: ReportsWritten | None = None
    sent: SendResult | None = None
    committed: CommittedSend | None = None  # where the PACS was asked to confirm it keeps the reports

    def lines(self) -> list[str]:
        """One line per result ("IM0001.dcm: pneumonia 0.87", "…: no result (unlike the model's images)"), then
        what was logged, written and sent."""
        lines = []
        for result in self.results:
            name = Path(result.source).name + (f" frame {result.frame + 1}" if result.frame is not None else "")
            if result.error:
                lines.append(f"{name}: could not be read ({result.error})")
            elif result.abstain or result.label is None:
                lines.append(f"{name}: no result (unlike the model's images, OOD score {result.ood_score})")
            else:
                lines.append(f"{name}: {result.label} {result.probabilities[result.label]:.2f}")
        if self.logged:
            lines.append(f"logged as results {self.logged[0]}-{self.logged[-1]} in the case log")
        if self.reports is not None:
            lines.append(f"{len(self.reports.reports)} report{'s' if len(self.reports.reports) != 1 else ''} written"
                         + (f" ({len(self.reports.refused)} could not be)" if self.reports.refused else ""))
        if self.committed is not None:
            lines.append(self.committed.summary())
            lines.extend(f"not kept by the PACS: {line}" for line in self.committed.not_kept())
        elif self.sent is not None:
            lines.append(self.sent.summary())
        return lines


def process_received_job(predictor: Predictor, files: Sequence[Path], *, caselog: CaseLog | None = None,
                         reports_dir: Path | None = None, secondary_capture: bool = False,
                         pacs: PacsNode | None = None, commit_wait: float | None = None) -> Job[NodeOutcome]:
    """Classify ``files`` (every frame), keep the results in ``caselog``, write a report per result into
    ``reports_dir`` and send the reports to ``pacs``, with ``commit_wait`` asking it to confirm it keeps them
    (its answer waited for that many seconds, coming to this node's receiver); each step where given. Yields
    ``Progress``."""
    outcome = NodeOutcome()
    outcome.results = yield from predictor.predict_files_job(list(files))
    if caselog is not None and outcome.results:
        with caselog:
            outcome.logged = caselog.record_predictions(predictor.bundle, outcome.results)
    if reports_dir is not None and outcome.results:
        from zsmed.report import model_identity, write_reports_job

        outcome.reports = yield from write_reports_job(outcome.results, model_identity(predictor.bundle),
                                                       reports_dir, secondary_capture=secondary_capture)
        written = [*outcome.reports.reports, *outcome.reports.captures]
        if pacs is not None and written and commit_wait is not None:
            from zsmed.dicom.commitment import send_and_commit_job

            outcome.committed = yield from send_and_commit_job(written, pacs, wait=commit_wait,
                                                               listening="it answers to this node's port")
            outcome.sent = outcome.committed.sent
        elif pacs is not None and written:
            from zsmed.dicom.network import send_job

            outcome.sent = yield from send_job(written, pacs)
    yield Progress(1, 1, "done")
    return outcome


__all__ = ["NodeOutcome", "process_received_job"]
