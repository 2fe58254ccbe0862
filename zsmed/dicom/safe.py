"""Decoding untrusted pixels where a crash is contained: a worker process with a time limit.

Codecs can fail hard on crafted input: pylibjpeg-rle raises a Rust ``PanicException`` (not an
``Exception``), GDCM can abort the whole process, a decoder can loop. ``SafeDecoder`` keeps one
worker process (forkserver on Linux, spawn elsewhere), sends it one task at a time over a pipe and
waits at most ``timeout`` seconds. A worker that dies or overruns is killed and replaced, and the
caller gets ``DecoderCrashError`` with a one-line reason; the app keeps running.

Tasks are the named functions in ``_TASKS`` (no arbitrary callables cross the pipe). zsmed errors
raised in the worker come back as the same class with the same reason.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import types
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np

from zsmed import errors as zerrors
from zsmed.errors import DecoderCrashError, ZsmedError

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_LIMIT_MB = 4096


# --- the worker side --------------------------------------------------------------------------------
def _task_stored_pixels(path: str, frame: int | None) -> np.ndarray:
    from zsmed.dicom.decode import load_dataset_and_pixels

    return load_dataset_and_pixels(path, frame)[1]


def _task_model_image(path: str, frame: int) -> np.ndarray:
    from zsmed.dicom.decode import load_model_image

    return load_model_image(path, frame)


_last_dataset: dict[str, Any] = {}


def _task_model_input(path: str, frame: int | None, config: dict[str, Any]) -> np.ndarray:
    """A file's normalised (3, S, S) model input (small to send back, whatever the image's size).

    The worker keeps the last data set read, so the frames of a multi-frame file are decoded one
    by one from a single read of it (as the in-process reader does)."""
    from zsmed.dicom.decode import load_model_image, model_image_from_dataset, open_dataset
    from zsmed.preprocess import PreprocessConfig, to_model_input

    preprocess = PreprocessConfig.from_dict(config)
    if frame is None:
        _last_dataset.clear()
        return to_model_input(load_model_image(path, 0), preprocess)
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if _last_dataset.get("key") != key:
        _last_dataset.clear()  # a failed read must not leave the previous file's data set
        dataset = open_dataset(path)[0]
        _last_dataset.update(key=key, dataset=dataset)
    return to_model_input(model_image_from_dataset(_last_dataset["dataset"], frame, path=path), preprocess)


def _task_display_image(path: str, frame: int, window_index: int, window: tuple[float, float] | None) -> np.ndarray:
    from zsmed.dicom.decode import number_of_frames, open_dataset, stored_pixels
    from zsmed.dicom.display import render_display

    ds, notes = open_dataset(path)
    multi = number_of_frames(ds) > 1
    arr = stored_pixels(ds, frame=frame if multi else None, path=path, notes=notes)
    return render_display(arr, ds, frame=frame if multi else 0, window_index=window_index, window=window)


def _task_modality_frame(path: str, frame: int) -> Any:
    """The viewer's ``ModalityFrame`` for one frame of a DICOM file, or for a photograph."""
    from zsmed.imageio import is_photo

    if is_photo(path):
        from zsmed.dicom.display import photo_frame
        from zsmed.imageio import read_photo

        if frame != 0:
            raise zerrors.PixelDecodeError(f"frame {frame} does not exist (a photograph has 1 frame)", path=path)
        return photo_frame(read_photo(path), path)
    from zsmed.dicom.decode import number_of_frames, open_dataset, stored_pixels
    from zsmed.dicom.display import modality_frame

    ds, notes = open_dataset(path)
    multi = number_of_frames(ds) > 1
    if not multi and frame != 0:
        raise zerrors.PixelDecodeError(f"frame {frame} does not exist (the image has 1 frame)", path=path)
    arr = stored_pixels(ds, frame=frame if multi else None, path=path, notes=notes)
    return modality_frame(arr, ds, frame if multi else 0)


def _task_inspect(path: str) -> dict[str, Any]:
    from zsmed.dicom.inspect import inspect_file

    return inspect_file(path)


def _task_ping() -> str:
    return "pong"


def _task_sleep(seconds: float) -> None:  # for tests of the time limit
    import time

    time.sleep(seconds)


def _task_abort() -> None:  # for tests: what a GDCM abort does to a process
    os.abort()


_TASKS: dict[str, Callable[..., Any]] = {
    "stored_pixels": _task_stored_pixels,
    "model_image": _task_model_image,
    "model_input": _task_model_input,
    "display_image": _task_display_image,
    "modality_frame": _task_modality_frame,
    "inspect": _task_inspect,
    "ping": _task_ping,
    "sleep": _task_sleep,
    "abort": _task_abort,
}


def _limit_memory(limit_mb: int | None) -> None:
    if not limit_mb:
        return
    try:
        import resource

        limit = int(limit_mb) * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # Windows, or a limit we may not set
        pass


def _quiet_stdio(keep_stderr: bool) -> None:
    """Codecs print to stdout/stderr; the CLI's stdout must stay pure JSON."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull if not keep_stderr else 2, 1)
        if not keep_stderr:
            os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        pass


def _worker_main(conn: Connection, memory_limit_mb: int | None, keep_stderr: bool) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _quiet_stdio(keep_stderr)
    _limit_memory(memory_limit_mb)
    import warnings

    warnings.simplefilter("ignore")
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        name, args = message
        try:
            result: tuple[Any, ...] = ("ok", _TASKS[name](*args))
        except ZsmedError as exc:
            result = ("zsmed", type(exc).__name__, exc.reason, exc.path)
        except MemoryError:
            result = ("crash", "MemoryError", "ran out of memory decoding the image (bogus dimensions?)")
        except BaseException as exc:  # PanicException from Rust codecs is not an Exception
            if isinstance(exc, SystemExit | KeyboardInterrupt):
                return
            text = str(exc).strip().splitlines()
            result = ("crash", type(exc).__name__, text[0][:300] if text else "")
        try:
            conn.send(result)
        except Exception as exc:  # e.g. an unpicklable result
            conn.send(("crash", type(exc).__name__, f"result could not be returned ({exc})"))


# --- the parent side --------------------------------------------------------------------------------
def _context() -> Any:
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "forkserver" in methods:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(
            ["numpy", "pydicom", "zsmed.dicom.decode", "zsmed.dicom.display", "zsmed.preprocess"])
        return ctx
    return multiprocessing.get_context("spawn")


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the decoder process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the decoder process was killed by {name}"
    return f"the decoder process exited with status {code}"


class SafeDecoder:
    """A contained decoder: one worker process, one task at a time, each with a time limit.

    Thread-safe (tasks are serialised). Use as a context manager or call ``close()``.
    """

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
        keep_stderr: bool = False,
    ) -> None:
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.keep_stderr = keep_stderr
        self.restarts = 0
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None

    # life cycle
    def _start(self) -> None:
        ctx = _context()
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(target=_worker_main, args=(child, self.memory_limit_mb, self.keep_stderr), daemon=True)
        # spawn/forkserver re-import the caller's __main__ in the child; a script without the
        # ``if __name__ == "__main__"`` guard (or ``python -``) would break. The worker needs
        # nothing from __main__, so hide it while the process starts.
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            process.start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main
        child.close()
        self._process, self._conn = process, parent

    def _stop(self, kill: bool) -> int | None:
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        code: int | None = None
        if conn is not None:
            if not kill:
                with contextlib.suppress(OSError):
                    conn.send(None)
            conn.close()
        if process is not None:
            if kill and process.is_alive():
                process.kill()
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
            code = process.exitcode
        return code

    def close(self) -> None:
        with self._lock:
            self._stop(kill=False)

    def __enter__(self) -> SafeDecoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self._stop(kill=True)

    # tasks
    def call(self, name: str, *args: Any, timeout: float | None = None, path: str | None = None) -> Any:
        """Run task ``name`` in the worker; zsmed errors come back as themselves."""
        if name not in _TASKS:
            raise ValueError(f"unknown task {name!r}")
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            if self._process is None or not self._process.is_alive():
                if self._process is not None:
                    self._stop(kill=True)
                    self.restarts += 1
                self._start()
            assert self._conn is not None
            try:
                self._conn.send((name, args))
                ready = self._conn.poll(limit)
            except (OSError, BrokenPipeError):
                ready = True
            if not ready:
                self._stop(kill=True)
                self.restarts += 1
                raise DecoderCrashError(f"decoding took longer than {limit:g} s and was stopped", path=path)
            try:
                result = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                self._process.join(timeout=5)
                code = self._stop(kill=True)
                self.restarts += 1
                raise DecoderCrashError(f"{_describe_exit(code)} (codec crash)", path=path) from None
        kind = result[0]
        if kind == "ok":
            return result[1]
        if kind == "zsmed":
            cls = getattr(zerrors, result[1], ZsmedError)
            if not (isinstance(cls, type) and issubclass(cls, ZsmedError)):
                cls = ZsmedError
            raise cls(result[2], path=result[3] if result[3] is not None else path)
        # An exception no zsmed check turned into a message: pydicom or a codec met bytes it could not
        # make sense of (a palette table of the wrong length, an unknown VR in an image attribute).
        detail = f"{result[1]}: {result[2]}".rstrip(": ")
        raise DecoderCrashError(f"the image cannot be decoded: the file is damaged or not as the DICOM standard "
                                f"describes ({detail})", path=path)

    def stored_pixels(self, path: str | Path, frame: int | None = None) -> np.ndarray:
        return self.call("stored_pixels", str(path), frame, path=str(path))

    def model_image(self, path: str | Path, frame: int = 0) -> np.ndarray:
        return self.call("model_image", str(path), frame, path=str(path))

    def model_input(self, path: str | Path, frame: int | None, config: dict[str, Any]) -> np.ndarray:
        """The normalised (3, S, S) model input of a DICOM file (``frame`` None: a single-frame file)."""
        return self.call("model_input", str(path), frame, dict(config), path=str(path))

    def display_image(
        self, path: str | Path, frame: int = 0, window_index: int = 0, window: tuple[float, float] | None = None
    ) -> np.ndarray:
        """8-bit display image (H, W) or (H, W, 3) for the viewer."""
        return self.call("display_image", str(path), frame, window_index, window, path=str(path))

    def modality_frame(self, path: str | Path, frame: int = 0) -> Any:
        """The viewer's ``zsmed.dicom.display.ModalityFrame`` (modality values before VOI, windows,
        pixel aspect, overlay facts) for one frame of a DICOM file or a photograph."""
        return self.call("modality_frame", str(path), frame, path=str(path))

    def inspect(self, path: str | Path) -> dict[str, Any]:
        return self.call("inspect", str(path), path=str(path))


_shared: SafeDecoder | None = None
_shared_lock = threading.Lock()


def shared_decoder() -> SafeDecoder:
    """One process-wide ``SafeDecoder`` (the desktop app's)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SafeDecoder()
        return _shared


def safe_model_image(path: str | Path, frame: int = 0, timeout: float | None = None) -> np.ndarray:
    """``load_model_image`` in the shared worker: a crashing codec raises ``DecoderCrashError``."""
    return shared_decoder().call("model_image", str(path), frame, timeout=timeout, path=str(path))


def safe_display_image(
    path: str | Path, frame: int = 0, window_index: int = 0, window: tuple[float, float] | None = None
) -> np.ndarray:
    return shared_decoder().display_image(path, frame, window_index, window)
