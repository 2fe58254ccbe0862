"""Progress reporting for long jobs.

Long jobs are generators that yield ``Progress`` and return their result (``StopIteration.value``).
The CLI drives them with a tqdm bar, the desktop app from a worker thread with a progress dialog,
and both cancel through the same ``CancelToken``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from zsmed.errors import Cancelled

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


Job = Generator[Progress, None, T]


class CancelToken:
    """Thread-safe cancellation flag checked by jobs between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


def relayed(job: Job[T], offset: int, total: int, message: str | None = None) -> Job[T]:
    """``job``'s progress as a share of a larger job (shifted by ``offset`` out of ``total``): one
    bar for a job made of parts; its result returned, and it is closed whatever happens (a
    cancellation included)."""
    try:
        while True:
            try:
                step = next(job)
            except StopIteration as stop:
                return stop.value
            yield Progress(offset + step.done, total, message or step.message)
    finally:
        job.close()


def run_job(
    job: Job[T],
    on_progress: Callable[[Progress], None] | None = None,
    cancel: CancelToken | None = None,
) -> T:
    """Drive a job to completion, reporting progress; raise ``Cancelled`` when asked to stop.

    Cancellation is checked before the job starts and after every ``Progress`` it yields; the
    job is closed (its ``finally`` blocks run) whenever it does not finish, whatever the reason.
    """
    finished = False
    try:
        if cancel is not None:
            cancel.raise_if_cancelled()
        while True:
            try:
                progress = next(job)
            except StopIteration as stop:
                finished = True
                return stop.value
            if on_progress is not None:
                on_progress(progress)
            if cancel is not None:
                cancel.raise_if_cancelled()
    finally:
        if not finished:
            job.close()


def run_with_bar(job: Job[T], description: str = "", *, enabled: bool | None = None) -> T:
    """Drive a job with a tqdm progress bar on stderr, shown only when stderr is a terminal."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else enabled
    bar = tqdm(desc=description, disable=not show, unit="item", leave=False, file=sys.stderr)

    def update(progress: Progress) -> None:
        if progress.total is not None and bar.total != progress.total:
            bar.total = progress.total
        bar.n = progress.done
        if progress.message:
            bar.set_postfix_str(progress.message, refresh=False)
        bar.refresh()

    try:
        return run_job(job, update)
    finally:
        bar.close()
