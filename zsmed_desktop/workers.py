"""Run zsmed jobs off the GUI thread.

A zsmed job is a generator yielding ``Progress`` and returning its result, so the CLI's progress
bar and the app's progress displays come from the same code. ``start_job`` runs one in a superqt
``GeneratorWorker`` (the app's one worker mechanism; every panel uses it) and delivers progress,
result, failure and cancellation on the GUI thread. Errors arrive as one-line messages, never as a
traceback or a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QObject, Slot

from zsmed.errors import Cancelled, ZsmedError
from zsmed.progress import Job


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


class _Relay(QObject):
    """Receives a worker's signals on the GUI thread through declared slots (the path PySide6
    supports best for cross-thread signals) and hands them to the caller's callbacks. Each relay
    keeps itself alive until its worker's last signal (``finished``) has been delivered, or, given
    an owner, lives as its child: once the owner is gone, nothing more is delivered to its
    callbacks (a closed browser's thumbnails no longer reach deleted tree items).

    The occasional "Fatal Python error: none_dealloc" seen with PySide6 6.12.0 was that release
    dropping a reference on every ``Signal.emit``; pyproject pins pyside6-essentials below 6.12."""

    _alive: ClassVar[set[_Relay]] = set()

    def __init__(
        self,
        on_progress: Callable[[Any], None] | None,
        on_done: Callable[[Any], None] | None,
        on_error: Callable[[str], None] | None,
        on_cancelled: Callable[[], None] | None,
        owner: QObject | None = None,
    ) -> None:
        super().__init__(owner)
        self._progress, self._done, self._error, self._cancelled = on_progress, on_done, on_error, on_cancelled
        if owner is None:
            _Relay._alive.add(self)

    @Slot(object)
    def yielded(self, value: Any) -> None:
        if self._progress is not None:
            self._progress(value)

    @Slot(object)
    def returned(self, value: Any) -> None:
        if self._done is not None:
            self._done(value)

    @Slot(object)
    def errored(self, exc: Any) -> None:
        if isinstance(exc, Cancelled):
            if self._cancelled is not None:
                self._cancelled()
        elif self._error is not None:
            self._error(error_message(exc))

    @Slot()
    def aborted(self) -> None:
        if self._cancelled is not None:
            self._cancelled()

    @Slot()
    def finished(self) -> None:
        _Relay._alive.discard(self)


def start_job(
    make_job: Callable[[], Job[Any]],
    *,
    on_progress: Callable[[Any], None] | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[str], None] | None = None,
    on_cancelled: Callable[[], None] | None = None,
    start: bool = True,
    owner: QObject | None = None,
) -> Any:
    """Run a zsmed job in a superqt ``GeneratorWorker``: every ``Progress`` it yields arrives in
    ``on_progress`` on the GUI thread, its result in ``on_done``, a failure as one line in
    ``on_error``, a cancellation in ``on_cancelled``. ``worker.quit()`` cancels at the job's next
    report. Call from the GUI thread; with ``owner`` (the widget whose methods the callbacks are),
    nothing is delivered after that widget is deleted."""
    from superqt.utils import GeneratorWorker

    worker = GeneratorWorker(guarded_job, make_job)
    relay = _Relay(on_progress, on_done, on_error, on_cancelled, owner)
    worker.yielded.connect(relay.yielded)
    worker.returned.connect(relay.returned)
    worker.errored.connect(relay.errored)
    worker.aborted.connect(relay.aborted)  # type: ignore[arg-type]
    worker.finished.connect(relay.finished)  # type: ignore[arg-type]
    worker._zsmed_relay = relay  # type: ignore[attr-defined]
    if start:
        worker.start()
    return worker
