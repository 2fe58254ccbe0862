"""Core plumbing: the error hierarchy, per-user folders, logging, progress jobs, the feature cache."""

from __future__ import annotations

import inspect
import logging
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import zsmed.errors as errors
from tests.encoders.helpers import CountingEncoder, FakeImageEncoder
from zsmed.errors import Cancelled, ZsmedError
from zsmed.features import FeatureCache, encode_files
from zsmed.log import LOGGER_NAME, configure_logging, get_logger, reset_logging
from zsmed.paths import user_cache_dir, user_data_dir, user_log_dir
from zsmed.progress import CancelToken, Job, Progress, run_job, run_with_bar

REPO = Path(__file__).resolve().parents[1]


# --- errors ------------------------------------------------------------------------------------
def _error_classes() -> list[type[ZsmedError]]:
    members = inspect.getmembers(errors, inspect.isclass)
    return [c for _, c in members if issubclass(c, ZsmedError) and c is not ZsmedError]


EXPECTED_BUILTIN = {
    "InputFileError": OSError,
    "EncoderUnavailableError": OSError,
    "BackendUnavailableError": OSError,
    "OcrUnavailableError": OSError,  # a program missing on this PC, as an engine is
    "PacsError": OSError,  # the network: a connection refused, a host unknown
}


def test_every_error_is_a_zsmed_error_and_its_matching_builtin() -> None:
    classes = _error_classes()
    assert len(classes) >= 15
    for cls in classes:
        assert issubclass(cls, ZsmedError)
        if cls is Cancelled:
            continue  # a user's request, not a failure: deliberately no OSError/ValueError
        builtin = EXPECTED_BUILTIN.get(cls.__name__, ValueError)
        assert issubclass(cls, builtin), f"{cls.__name__} should also be a {builtin.__name__}"
        error = cls("cannot decode", path="/data/x.dcm")
        assert isinstance(error, builtin)
        assert str(error) == "/data/x.dcm: cannot decode" and error.reason == "cannot decode"
        assert error.path == "/data/x.dcm"
        assert str(cls("no path")) == "no path" and cls("no path").path is None


def test_specific_errors_refine_the_general_ones() -> None:
    assert issubclass(errors.UnsupportedTransferSyntaxError, errors.PixelDecodeError)
    assert issubclass(errors.DecoderCrashError, errors.PixelDecodeError)


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_errors_survive_pickling_across_processes(cls: type[ZsmedError]) -> None:
    # Worker processes (DICOM decoding) send errors back pickled: message, path and reason must survive.
    error = cls("truncated pixel data", path=Path("/cd/IM0001"))
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is cls and str(back) == str(error)
    assert back.path == error.path and back.reason == error.reason


# --- per-user folders ----------------------------------------------------------------------------
def test_env_overrides_place_the_folders(isolated_dirs: Path) -> None:
    assert user_data_dir() == isolated_dirs / "data" and user_data_dir().is_dir()
    assert user_cache_dir() == isolated_dirs / "cache" and user_cache_dir().is_dir()
    assert user_log_dir() == isolated_dirs / "data" / "logs"


def test_defaults_come_from_platformdirs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.delenv("ZSMED_DATA_DIR", raising=False)
    monkeypatch.setenv("ZSMED_CACHE_DIR", "  ")  # blank counts as unset
    seen: list[tuple[str, object]] = []

    def fake(kind: str):  # type: ignore[no-untyped-def]
        def resolve(appname: str, appauthor: object = None) -> str:
            seen.append((appname, appauthor))
            return str(tmp_path / kind / appname)

        return resolve

    monkeypatch.setattr(platformdirs, "user_data_dir", fake("data"))
    monkeypatch.setattr(platformdirs, "user_cache_dir", fake("cache"))
    assert user_data_dir() == tmp_path / "data" / "zsmed"
    assert user_cache_dir() == tmp_path / "cache" / "zsmed"
    assert seen == [("zsmed", False), ("zsmed", False)]


def test_home_is_expanded_and_unusable_folders_are_clear(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ZSMED_DATA_DIR", "~/zsmed-data")
    assert user_data_dir() == tmp_path / "zsmed-data"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    monkeypatch.setenv("ZSMED_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(errors.InputFileError, match="ZSMED_CACHE_DIR") as info:
        user_cache_dir()
    assert isinstance(info.value, OSError)


# --- logging ----------------------------------------------------------------------------------------
@pytest.fixture()
def clean_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


def _owned_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger(LOGGER_NAME).handlers if getattr(h, "_zsmed_role", None)]


def test_logging_goes_to_a_rotating_file_and_is_idempotent(isolated_dirs: Path, clean_logging: None,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = configure_logging()
    assert path == isolated_dirs / "data" / "logs" / "zsmed.log"
    assert configure_logging(verbose=True) == path
    assert len(_owned_handlers()) == 2  # one console, one file: never stacked
    log = get_logger("features")
    assert log.name == "zsmed.features" and get_logger("zsmed.x").name == "zsmed.x"
    log.debug("debug detail")
    log.warning("something odd")
    for handler in _owned_handlers():
        handler.flush()
    text = path.read_text(encoding="utf-8")
    assert "debug detail" in text and "WARNING zsmed.features: something odd" in text
    err = capsys.readouterr().err  # the console speaks as the command line does; --verbose names the logger
    assert "zsmed: warning: something odd\n" in err and "zsmed: debug (zsmed.features): debug detail\n" in err
    configure_logging(verbose=False)
    log.info("quiet info")
    assert "quiet info" not in capsys.readouterr().err  # the console shows warnings and up only
    assert logging.getLogger("transformers").getEffectiveLevel() >= logging.WARNING


def test_logging_without_a_writable_profile_still_works(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                        clean_logging: None) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("ZSMED_DATA_DIR", str(blocker / "data"))
    assert configure_logging() is None
    assert [getattr(h, "_zsmed_role", None) for h in _owned_handlers()] == ["console"]
    assert configure_logging(to_file=False) is None


# --- progress jobs --------------------------------------------------------------------------------
def _counting_job(n: int, state: dict[str, object]) -> Job[int]:
    state["started"] = True
    try:
        for i in range(n):
            yield Progress(i, n, f"step {i}")
        return n * 10
    finally:
        state["closed"] = True


def test_run_job_reports_progress_and_returns_the_result() -> None:
    seen: list[Progress] = []
    state: dict[str, object] = {}
    assert run_job(_counting_job(3, state), seen.append) == 30
    assert [p.done for p in seen] == [0, 1, 2] and seen[1].fraction == pytest.approx(1 / 3)
    assert Progress(5, None).fraction is None and Progress(7, 5).fraction == 1.0
    assert run_with_bar(_counting_job(2, {}), "test", enabled=False) == 20


def test_cancellation_stops_the_job_and_closes_it() -> None:
    token = CancelToken()
    state: dict[str, object] = {}
    seen: list[int] = []

    def on_progress(progress: Progress) -> None:
        seen.append(progress.done)
        if progress.done == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        run_job(_counting_job(100, state), on_progress, token)
    assert seen == [0, 1, 2] and state["closed"] is True
    # Cancelled before it starts: the job never runs.
    fresh: dict[str, object] = {}
    with pytest.raises(Cancelled):
        run_job(_counting_job(5, fresh), cancel=token)
    assert "started" not in fresh


def test_a_failing_progress_callback_closes_the_job() -> None:
    state: dict[str, object] = {}

    def explode(_: Progress) -> None:
        raise RuntimeError("display gone")

    with pytest.raises(RuntimeError):
        run_job(_counting_job(5, state), explode)
    assert state["closed"] is True


def test_cancel_token_is_thread_safe_and_cancels_encoding(tmp_path: Path, shared_data: Path) -> None:
    images = _copy_images(shared_data, tmp_path, 6)
    token = CancelToken()
    encoder = CountingEncoder(FakeImageEncoder())
    thread = threading.Thread(target=token.cancel)
    thread.start()
    thread.join()
    with pytest.raises(Cancelled):
        run_job(encode_files(images, encoder, batch_size=2), cancel=token)
    assert encoder.images == 0


# --- feature cache -----------------------------------------------------------------------------------
def _copy_images(shared_data: Path, folder: Path, count: int) -> list[Path]:
    sources = sorted((shared_data / "ham10000_fs" / "novel_dev").rglob("*.jpg"))[:count]
    if len(sources) < count:
        pytest.skip("not enough shared images")
    folder.mkdir(parents=True, exist_ok=True)
    targets = []
    for source in sources:
        shutil.copy(source, folder / source.name)
        targets.append(folder / source.name)
    return targets


def test_second_pass_comes_from_the_cache_without_calling_the_encoder(tmp_path: Path, shared_data: Path) -> None:
    images = _copy_images(shared_data, tmp_path / "imgs", 5)
    cache = FeatureCache(tmp_path / "features.sqlite")
    counting = CountingEncoder(FakeImageEncoder())
    first = run_job(encode_files(images, counting, cache, batch_size=2))
    assert counting.images == 5 and counting.calls == 3 and first.cache_hits == 0
    assert first.features.shape == (5, 6) and first.paths == images and not first.failures
    assert cache.count(counting.spec.cache_id) == 5 and cache.misses == 5
    forbidden = CountingEncoder(FakeImageEncoder(), forbid=True)
    second = run_job(encode_files(images, forbidden, cache, batch_size=2))
    assert second.cache_hits == 5 and cache.hits == 5
    np.testing.assert_array_equal(second.features, first.features)
    # Another feature space (other weights) misses: the cache never mixes encoders.
    other = CountingEncoder(FakeImageEncoder(tag="v2"))
    run_job(encode_files(images, other, cache))
    assert other.images == 5
    cache.close()


def test_real_encoder_second_pass_is_served_from_the_cache(tmp_path: Path, shared_data: Path) -> None:
    from zsmed.encoders import ImageEncoder, shared_encoder

    lite0 = shared_encoder("efficientnet-lite0")
    assert isinstance(lite0, ImageEncoder)
    images = _copy_images(shared_data, tmp_path / "imgs", 2)
    with FeatureCache(tmp_path / "features.sqlite") as cache:
        first = run_job(encode_files(images, CountingEncoder(lite0), cache))
        second = run_job(encode_files(images, CountingEncoder(lite0, forbid=True), cache))
    assert second.cache_hits == 2 and second.features.dtype == np.float32
    np.testing.assert_array_equal(first.features, second.features)


def test_identical_files_are_encoded_once(tmp_path: Path, shared_data: Path) -> None:
    (image,) = _copy_images(shared_data, tmp_path / "imgs", 1)
    twin = image.with_name("twin.jpg")
    shutil.copy(image, twin)
    counting = CountingEncoder(FakeImageEncoder())
    result = run_job(encode_files([image, twin], counting))
    assert counting.images == 1 and result.paths == [image, twin]
    np.testing.assert_array_equal(result.features[0], result.features[1])


def test_cache_survives_a_new_process(tmp_path: Path, shared_data: Path) -> None:
    images = _copy_images(shared_data, tmp_path / "imgs", 3)
    db = tmp_path / "features.sqlite"
    with FeatureCache(db) as cache:
        run_job(encode_files(images, FakeImageEncoder(), cache))
    code = (
        "import sys; from pathlib import Path\n"
        "from zsmed.features import FeatureCache, encode_files\n"
        "from zsmed.progress import run_job\n"
        "from tests.encoders.helpers import CountingEncoder, FakeImageEncoder\n"
        "paths = [Path(p) for p in sys.argv[2:]]\n"
        "with FeatureCache(sys.argv[1]) as cache:\n"
        "    result = run_job(encode_files(paths, CountingEncoder(FakeImageEncoder(), forbid=True), cache))\n"
        "print(result.cache_hits, len(result.paths))\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(db), *map(str, images)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3"]


def test_a_corrupt_jpeg_in_a_class_folder_is_named_not_fatal(tmp_path: Path, shared_data: Path) -> None:
    from zsmed.data.folders import load_class_folder

    root = tmp_path / "cases"
    good = _copy_images(shared_data, root / "nevus", 3)
    (root / "nevus" / "cut.jpg").write_bytes(good[0].read_bytes()[:400])
    (root / "nevus" / "noise.jpg").write_bytes(os.urandom(2000))
    (root / "nevus" / "empty.png").write_bytes(b"")
    folder = load_class_folder(root)
    result = run_job(encode_files([item.path for item in folder.items], FakeImageEncoder()))
    assert sorted(p.name for p in result.paths) == sorted(p.name for p in good)
    failed = {path.name: reason for path, reason in result.failures}
    assert set(failed) == {"cut.jpg", "noise.jpg", "empty.png"}
    assert all(reason and "\n" not in reason for reason in failed.values())
    assert result.features.shape == (3, 6)


def test_unreadable_files_are_failures(tmp_path: Path) -> None:
    result = run_job(encode_files([tmp_path / "absent.jpg", tmp_path], FakeImageEncoder()))
    assert [p for p, _ in result.failures] == [tmp_path / "absent.jpg", tmp_path]
    assert result.features.shape == (0, 6)


_WRITER = """
import sys
import numpy as np
from zsmed.features import FeatureCache
cache = FeatureCache(sys.argv[1])
worker = int(sys.argv[2])
for batch in range(25):
    entries = {f"w{worker}-k{batch}-i{i}": np.full(8, worker * 1000 + batch * 10 + i, dtype=np.float32)
               for i in range(4)}
    cache.put_many(entries, "space")
    cache.get_many(list(entries), "space")
cache.close()
"""


def test_concurrent_writers_do_not_corrupt_the_cache(tmp_path: Path) -> None:
    db = tmp_path / "features.sqlite"
    FeatureCache(db).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(db), str(w)], cwd=REPO,
                              stderr=subprocess.PIPE, text=True) for w in range(3)]
    # Threads sharing one instance write at the same time as the processes.
    shared = FeatureCache(db)

    def thread_writer(worker: int) -> None:
        for batch in range(25):
            shared.put_many({f"w{worker}-k{batch}-i{i}": np.full(8, worker * 1000 + batch * 10 + i, dtype=np.float32)
                             for i in range(4)}, "space")

    threads = [threading.Thread(target=thread_writer, args=(w,)) for w in (10, 11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err
    assert shared.count("space") == 5 * 25 * 4
    keys = [f"w{w}-k{b}-i{i}" for w in (0, 1, 2, 10, 11) for b in range(25) for i in range(4)]
    found = shared.get_many(keys, "space")
    for key in keys:
        w, b, i = (int(part[1:]) for part in key.split("-"))
        np.testing.assert_array_equal(found[key], np.full(8, w * 1000 + b * 10 + i, dtype=np.float32))
    shared.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_corrupt_cache_file_is_moved_aside(tmp_path: Path) -> None:
    db = tmp_path / "features.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with FeatureCache(db) as cache:
        cache.put_many({"k": np.ones(3, dtype=np.float32)}, "s")
        assert cache.count() == 1
    assert any(p.name.startswith("features.sqlite.broken-") for p in tmp_path.iterdir())


def test_cache_defaults_to_the_user_cache_dir(isolated_dirs: Path) -> None:
    with FeatureCache() as cache:
        assert cache.path == isolated_dirs / "cache" / "features.sqlite"
        assert cache.get_many([], "s") == {}


def test_input_file_error_names_the_file_and_the_reason(tmp_path: Path) -> None:
    from zsmed.errors import InputFileError, input_file_error
    from zsmed.imageio import read_image

    cases = {
        FileNotFoundError(2, "No such file"): "file not found",
        PermissionError(13, "Permission denied"): "permission denied",
        IsADirectoryError(21, "Is a directory"): "is a directory",
        OSError(5, "Input/output error"): "cannot read (Input/output error)",
    }
    for exc, reason in cases.items():
        error = input_file_error(tmp_path / "x.dcm", exc)
        assert isinstance(error, InputFileError) and isinstance(error, OSError)
        assert str(error).startswith(str(tmp_path / "x.dcm")) and reason in str(error)
    # The same wording reaches users through every front door.
    with pytest.raises(InputFileError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(InputFileError, match="file not found"):
        read_image(tmp_path / "missing.png")


def test_log_file_rotates_by_size_and_keeps_three_backups(tmp_path: Path) -> None:
    from zsmed.log import _RotatingFileHandler

    path = tmp_path / "zsmed.log"
    handler = _RotatingFileHandler(path, max_bytes=200, backup_count=3)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("zsmed.test.rotation")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        for i in range(40):
            logger.info("record %02d %s", i, "x" * 40)
    finally:
        logger.removeHandler(handler)
        handler.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["zsmed.log", "zsmed.log.1", "zsmed.log.2", "zsmed.log.3"]
    assert path.stat().st_size <= 200 + 60 and "record 39" in path.read_text()
    assert "record 00" not in "".join(p.read_text() for p in tmp_path.iterdir())  # the oldest are gone


def test_metadata_that_cannot_group_images_is_said(tmp_path: Path, shared_data: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A metadata.csv that names no image, or leaves images without their patient, would let one
    patient's images fall on both sides of a train / test split: the folder says so."""
    from zsmed.data.folders import load_class_folder

    root = tmp_path / "cases"
    images = _copy_images(shared_data, root / "nevus", 3) + _copy_images(shared_data, root / "other", 2)
    (root / "metadata.csv").write_text("patient,age\np1,40\n")
    with caplog.at_level("WARNING", logger="zsmed.data.folders"):
        folder = load_class_folder(root)
    assert folder.group_column is None and "has no 'file' or 'image_id' column" in caplog.text
    caplog.clear()
    first = images[0].relative_to(root).as_posix()
    (root / "metadata.csv").write_text(f"file,patient_id\n{first},p1\n")
    with caplog.at_level("WARNING", logger="zsmed.data.folders"):
        folder = load_class_folder(root)
    assert folder.group_column == "patient_id"
    assert "4 image(s) have no patient_id in metadata.csv" in caplog.text
    assert {item.group for item in folder.items if item.path == images[0]} == {"p1"}


def test_the_command_line_says_warnings_in_one_line_but_not_collected_objects(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning raised while a command runs is one 'zsmed: warning:' line; a ResourceWarning (a socket or file
    the interpreter closed as it collected it, possibly left by something else) is not the command's news; and
    the process's warning display is given back when main() returns."""
    import warnings

    from zsmed.cli import main as cli

    def handler(_args: object) -> int:
        warnings.warn("the PACS answered late", UserWarning, stacklevel=1)
        warnings.warn("unclosed <socket.socket fd=17>", ResourceWarning, stacklevel=1)
        return 0

    parser = cli.build_parser(cli.COMMAND_MODULES)
    monkeypatch.setattr(cli, "build_parser", lambda _modules: parser)
    monkeypatch.setattr(parser, "parse_args", lambda _argv: type("Args", (), {"verbose": False, "handler": handler}))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        before = warnings.showwarning
        assert cli.main(["doctor"]) == 0
        assert warnings.showwarning is before
    err = capsys.readouterr().err
    assert err == "zsmed: warning: the PACS answered late\n"
