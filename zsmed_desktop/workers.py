"""Run zsmed jobs off the GUI thread.

A zsmed job is a generator yielding ``Progress`` and returning its result; ``JobRunner`` drives
one in a ``QThreadPool`` worker and reports through Qt signals, so the CLI's progress bar and the
app's progress dialog come from the same code. Errors arrive as one-line messages, never as a
traceback or a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from zsmed.errors import Cancelled, ZsmedError
from zsmed.progress import CancelToken, Job, Progress


class JobSignals(QObject):
    progress = Signal(int, int, str)  # done, total (0 = unknown), message
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()


class JobRunner(QRunnable):
    def __init__(self, make_job: Callable[[], Job[Any]]) -> None:
        super().__init__()
        self.make_job = make_job
        self.signals = JobSignals()
        self.token = CancelToken()
        self.setAutoDelete(False)

    def cancel(self) -> None:
        self.token.cancel()

    @Slot()
    def run(self) -> None:
        try:
            job = self.make_job()
            while True:
                try:
                    progress: Progress = next(job)
                except StopIteration as stop:
                    self.signals.finished.emit(stop.value)
                    return
                self.signals.progress.emit(progress.done, progress.total or 0, progress.message)
                if self.token.cancelled:
                    job.close()
                    self.signals.cancelled.emit()
                    return
        except Cancelled:
            self.signals.cancelled.emit()
        except ZsmedError as exc:
            self.signals.failed.emit(str(exc))
        except Exception as exc:  # a worker must never take the app down; say what happened
            self.signals.failed.emit(f"unexpected error: {exc.__class__.__name__}: {exc}")


    def start(self, pool: QThreadPool | None = None) -> JobRunner:
        """Start only after every signal is connected: a fast job could otherwise finish first."""
        (pool or QThreadPool.globalInstance()).start(self)
        return self


def single_step_job(fn: Callable[[], Any], message: str = "") -> Job[Any]:
    """Wrap a plain call as a job, for work with no progress of its own (decoding one image)."""
    yield Progress(0, 1, message)
    result = fn()
    yield Progress(1, 1, message)
    return result
