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


# --- superqt workers over zsmed jobs (the house mechanism) -------------------------------------------
class JobFailed(Exception):
    """A job's unexpected error, as one line (superqt drops RuntimeErrors raised by a generator)."""


def guarded_job(make_job: Callable[[], Job[Any]]) -> Job[Any]:
    """``make_job()`` re-yielded, its errors turned into one-line messages, and always closed."""
    job = make_job()
    try:
        return (yield from job)
    except (ZsmedError, Cancelled):
        raise
    except Exception as exc:
        raise JobFailed(f"unexpected error: {exc.__class__.__name__}: {exc}") from exc
    finally:
        job.close()


def error_message(exc: BaseException) -> str:
    """What a worker's error says to the user: one line."""
    if isinstance(exc, ZsmedError | JobFailed):
        return str(exc)
    return f"unexpected error: {exc.__class__.__name__}: {exc}"


def start_job(
    make_job: Callable[[], Job[Any]],
    *,
    on_progress: Callable[[Any], None] | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    start: bool = True,
) -> Any:
    """Run a zsmed job in a superqt ``GeneratorWorker``: every ``Progress`` it yields arrives in
    ``on_progress`` on the GUI thread, its result in ``on_done``, a failure as one line in
    ``on_error``. ``worker.quit()`` cancels at the job's next report."""
    from superqt.utils import GeneratorWorker

    worker = GeneratorWorker(guarded_job, make_job)
    if on_progress is not None:
        worker.yielded.connect(on_progress)
    if on_done is not None:
        worker.returned.connect(on_done)
    if on_error is not None:
        report = on_error

        def errored(exc: BaseException) -> None:
            if isinstance(exc, Cancelled):
                if on_cancelled is not None:
                    on_cancelled()
                return
            report(error_message(exc))

        worker.errored.connect(errored)
    if on_cancelled is not None:
        cancelled = on_cancelled
        worker.aborted.connect(lambda *_: cancelled())
    if start:
        worker.start()
    return worker
