"""Predict with a verified bundle: files, folders and DICOM series, batched, with the OOD gate.

Every result says ``abstain`` when the gate judges the input unlike the support set (or when the
network's output is not finite); an abstained result carries no label, so nothing downstream can
read a confident answer into it. A file that cannot be read or preprocessed gives an ``error``
entry and never stops the rest.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from zsmed.errors import BundleError, InputFileError, ZsmedError
from zsmed.imageio import candidate_images, is_dicomdir, is_photo, read_model_input
from zsmed.preprocess import PreprocessConfig, to_model_input
from zsmed.progress import Job, Progress
from zsmed.runtime.backends import Backend, open_backend
from zsmed.runtime.bundle import Bundle, read_bundle
from zsmed.runtime.ood import ood_scores

# onnxruntime's activations for Lite0 take ~30 MB per image in a batch (941 MB peak RSS at 32,
# 321 MB at 8, measured): 8 keeps `zsmed predict` under 400 MB at about the same CPU throughput.
DEFAULT_BATCH = 8


@dataclass
class Prediction:
    source: str
    label: str | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    abstain: bool = True
    ood_score: float | None = None  # distance / threshold: above 1.0 means abstain
    error: str | None = None
    series: str | None = None
    frame: int | None = None  # 0-based frame of a multi-frame DICOM image
    # the model's embedding of the image (what the OOD gate measures): kept in the case log where the caller asks,
    # for finding the reviewed cases most alike; never in the JSON output
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        # (the embedding dropped before asdict, which would deep-copy it only to leave it out)
        return {k: v for k, v in asdict(replace(self, embedding=None)).items()
                if k != "embedding" and (v is not None or k in ("label", "abstain"))}


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Predictor:
    def __init__(self, bundle: Bundle, backend: Backend) -> None:
        self.bundle = bundle
        self.backend = backend
        self.class_names = bundle.class_names
        self.preprocess = bundle.preprocess
        self._ood_stats = bundle.ood_arrays()
        self._threshold = float(bundle.ood["threshold"])

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def infer(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Preprocessed pixels (B, 3, S, S) -> (probabilities (B, C), OOD score / threshold (B,))."""
        probabilities, relative, _embedding = self.infer_with_embedding(pixels)
        return probabilities, relative

    def infer_with_embedding(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``infer``, and the model's embeddings (B, D) beside."""
        pixels = np.ascontiguousarray(pixels, dtype=np.float32)
        logits, embedding = self.backend.run(pixels)
        if logits.ndim != 2 or logits.shape != (len(pixels), len(self.class_names)):
            raise BundleError(f"the model gives {tuple(logits.shape)} logits for {len(pixels)} images and "
                              f"{len(self.class_names)} classes", path=self.bundle.path)
        if embedding.ndim != 2 or embedding.shape != (len(pixels), self._ood_stats["mean"].shape[0]):
            raise BundleError(f"the model's embedding {tuple(embedding.shape)} does not match its OOD gate "
                              f"(dimension {self._ood_stats['mean'].shape[0]})", path=self.bundle.path)
        probabilities = softmax(logits)
        relative = ood_scores(embedding, self._ood_stats) / self._threshold
        return probabilities, relative, np.asarray(embedding, dtype=np.float32)

    def _results(self, sources: Sequence[str], pixels: np.ndarray) -> list[Prediction]:
        probabilities, relative, embeddings = self.infer_with_embedding(pixels)
        results = []
        for source, probs, score, embedding in zip(sources, probabilities, relative, embeddings, strict=True):
            finite = bool(np.isfinite(probs).all() and np.isfinite(score))
            abstain = (not finite) or bool(score > 1.0)
            results.append(
                Prediction(
                    source=source,
                    label=None if abstain else self.class_names[int(np.argmax(probs))],
                    probabilities={c: round(float(p), 6) for c, p in zip(self.class_names, probs, strict=True)}
                    if finite
                    else {},
                    abstain=abstain,
                    ood_score=round(float(score), 4) if finite else None,
                    embedding=embedding.copy() if np.isfinite(embedding).all() else None,
                )
            )
        return results

    def predict_images(self, images: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[Prediction]:
        """[0, 1] grey or RGB images (display semantics applied) -> predictions."""
        names = list(names) if names is not None else [f"image {i}" for i in range(len(images))]
        out: list[Prediction] = []
        for start in range(0, len(images), DEFAULT_BATCH):
            chunk = [to_model_input(image, self.preprocess) for image in images[start : start + DEFAULT_BATCH]]
            out.extend(self._results(names[start : start + DEFAULT_BATCH], np.stack(chunk)))
        return out

    def predict_files_job(self, paths: Sequence[Path], batch_size: int = DEFAULT_BATCH,
                          frames: str = "all", *, trusted_input: bool = False) -> Job[list[Prediction]]:
        """Job (yields ``Progress``) predicting files in batches; unreadable files give error entries.

        ``frames``: ``all`` predicts every frame of a multi-frame DICOM image (one result per frame,
        with its ``frame`` index), ``first`` only its first frame. DICOM files are decoded in the
        contained decoder unless ``trusted_input`` (see ``_FrameReader``)."""
        if frames not in FRAME_CHOICES:
            raise ValueError(f"frames must be one of {', '.join(FRAME_CHOICES)}, not {frames!r}")
        batch_size = max(1, int(batch_size))
        items = [(path, frame) for path in paths for frame in _frames_of(path, frames)]
        reader = _FrameReader(self.preprocess, trusted=trusted_input)
        try:
            return (yield from self._predict_items(items, batch_size, reader))
        finally:
            reader.close()

    def _predict_items(self, items: list[tuple[Path, int | None]], batch_size: int,
                       reader: _FrameReader) -> Job[list[Prediction]]:
        results: list[Prediction] = []
        total = len(items)
        yield Progress(0, total, "")
        for start in range(0, total, batch_size):
            chunk = items[start : start + batch_size]
            ok_sources: list[str] = []
            ok_pixels: list[np.ndarray] = []
            slots: list[Prediction | None] = []
            for path, frame in chunk:
                try:
                    ok_pixels.append(reader.read(path, frame))
                    ok_sources.append(str(path))
                    slots.append(None)
                except ZsmedError as exc:
                    slots.append(Prediction(source=str(path), error=exc.reason, abstain=True, frame=frame))
                except Exception as exc:  # untrusted files: whatever a decoder lets through is this file's error
                    slots.append(Prediction(source=str(path), error=f"{exc.__class__.__name__}: {exc}", frame=frame))
            predicted = iter(self._results(ok_sources, np.stack(ok_pixels)) if ok_pixels else [])
            for slot, (_, frame) in zip(slots, chunk, strict=True):
                if slot is None:
                    slot = next(predicted)
                    slot.frame = frame
                results.append(slot)
            yield Progress(min(total, start + batch_size), total, Path(chunk[-1][0]).name)
        return results

    def predict_files(self, paths: Sequence[str | Path], batch_size: int = DEFAULT_BATCH,
                      frames: str = "all", *, trusted_input: bool = False) -> list[Prediction]:
        from zsmed.progress import run_job

        return run_job(self.predict_files_job([Path(p) for p in paths], batch_size, frames,
                                              trusted_input=trusted_input))


FRAME_CHOICES = ("all", "first")


class _FrameReader:
    """The model input of one file (or one frame of it).

    Untrusted input (the default): photos are decoded here (after a pixel-count check) and DICOM
    files in a ``SafeDecoder`` worker (memory- and time-capped; a codec that crashes, loops or
    allocates gigabytes costs that file an error entry, not the run). The worker is started at the
    first DICOM file only (a folder of photos never pays its start) and serves every file after
    it; it keeps the last data set read, so a multi-frame file is read once, not once per frame.
    ``trusted=True`` decodes DICOM in-process (training folders on the workstation)."""

    def __init__(self, config: PreprocessConfig, *, trusted: bool = False, decoder: Any = None) -> None:
        self._config = config
        self._trusted = trusted
        self._decoder = decoder
        self._own_decoder = decoder is None
        self._path: Path | None = None
        self._dataset: Any = None

    def close(self) -> None:
        if self._own_decoder and self._decoder is not None:
            self._decoder.close()
            self._decoder = None

    def read(self, path: Path, frame: int | None) -> np.ndarray:
        if is_photo(path):
            return read_model_input(path, self._config)
        if not self._trusted:
            if self._decoder is None:
                from zsmed.dicom.safe import SafeDecoder

                self._decoder = SafeDecoder(timeout=UNTRUSTED_DECODE_TIMEOUT, memory_limit_mb=UNTRUSTED_DECODE_MB)
            return np.asarray(self._decoder.model_input(path, frame, self._config.to_dict()), dtype=np.float32)
        if frame is None:
            return read_model_input(path, self._config)
        from zsmed.dicom import model_image_from_dataset, open_dataset

        if path != self._path:
            self._path, self._dataset = None, None  # a failed open must not leave the previous file
            self._dataset = open_dataset(path)[0]
            self._path = path
        return to_model_input(model_image_from_dataset(self._dataset, frame, path=path), self._config)


# The contained decoder's limits for files from outside (USB sticks, CDs): a real image decodes in
# well under a second and far below these; a crafted one is stopped there.
UNTRUSTED_DECODE_TIMEOUT = 30.0
UNTRUSTED_DECODE_MB = 3072


def _frames_of(path: Path, frames: str) -> list[int | None]:
    """Frame indices to predict for ``path``: [None] for a photo or a single-frame image (and for
    a file whose header cannot be read, or claims more frames than zsmed reads: reading it later
    gives the error entry)."""
    if frames == "first":
        return [None]
    try:
        count = int(_header_value(path, "NumberOfFrames") or 1)
    except (TypeError, ValueError):  # a malformed value: the pixel read reports the file's problem
        return [None]
    from zsmed.dicom.decode import MAX_FRAMES

    return list(range(count)) if 1 < count <= MAX_FRAMES else [None]


def _header_value(path: Path, keyword: str) -> Any:
    """One element of a DICOM file's header (read alone, no pixels); None for a photo, a file that
    is not DICOM or whose header cannot be read, or a missing element."""
    if is_photo(path):
        return None
    try:
        import pydicom

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reading the pixels later reports the file's problems
            return getattr(pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=[keyword]), keyword,
                           None)
    except Exception:  # not DICOM or an unreadable header
        return None


def load_predictor(
    path: str | Path,
    *,
    backend: str = "auto",
    require_signature: bool | None = None,
    trusted_keys: Sequence[str | Path] | None = None,
    threads: int | None = None,
    n_images: int | None = None,
    allow_unsigned: bool = False,
) -> Predictor:
    """``n_images``: how many images this run will predict, so ``auto`` weighs start-up time.
    Trust (``require_signature``, ``trusted_keys``, ``allow_unsigned``): see ``read_bundle``; left
    out (None), they are this PC's settings (``ZSMED_TRUSTED_KEYS``, ``ZSMED_REQUIRE_SIGNATURE``), so
    every caller that predicts (the CLI, the app) holds to the site's policy."""
    from zsmed.runtime.trust import REQUIRE_ENV, env_bool, env_trusted_keys

    keys = env_trusted_keys() if trusted_keys is None else list(trusted_keys)
    require = env_bool(REQUIRE_ENV) if require_signature is None else require_signature
    bundle = read_bundle(path, require_signature=require, trusted_keys=keys, allow_unsigned=allow_unsigned)
    return Predictor(bundle, open_backend(bundle, backend, threads, n_images))


def expand_inputs(inputs: Iterable[str | Path], *, confined: bool = False,
                  refused: list[tuple[str, str]] | None = None) -> list[Path]:
    """Files as given, folders walked recursively for image candidates (sorted, stable order), and a
    CD's DICOMDIR replaced by the image files its records reference (the DICOMDIR itself holds no
    image; one met while walking a folder is skipped, as the files it lists are in that tree).

    ``confined`` (untrusted input): links inside a folder are not followed out of it. A DICOMDIR's
    references never leave its folder: those that would are left out, and listed in ``refused``
    (path, reason) when given."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files.extend(candidate_images(path, confined=confined))
        elif path.is_file() and is_dicomdir(path):
            files.extend(_dicomdir_members(path, refused))
        elif path.exists():
            files.append(path)
        else:
            raise InputFileError("no such file or folder", path=path)
    return files


def _dicomdir_members(path: Path, refused: list[tuple[str, str]] | None = None) -> list[Path]:
    """The files a DICOMDIR references, in its record order; a referenced file missing from the
    disc stays in the list, so predicting it names it. An unreadable DICOMDIR stays itself, so
    predicting it says why. A reference outside the DICOMDIR's folder is never read."""
    from zsmed.dicom.scan import dicomdir_files

    try:
        found, problems = dicomdir_files(path)
    except ZsmedError:
        return [path]
    if refused is not None:
        refused.extend((problem.path, problem.reason) for problem in problems if problem.kind == "outside")
    return [Path(p) for p in found] + [Path(problem.path) for problem in problems if problem.kind == "missing"]


def series_key(path: Path) -> str:
    """A DICOM file's SeriesInstanceUID (header only); otherwise the folder holding the file."""
    uid = _header_value(path, "SeriesInstanceUID")
    return f"series {uid}" if uid else f"folder {path.parent}"


def aggregate_series(results: Sequence[Prediction], class_names: Sequence[str]) -> list[Prediction]:
    """One prediction per series: mean probabilities over its images that did not abstain.

    A series abstains when every image in it abstained or failed; its OOD score is the median."""
    groups: dict[str, list[Prediction]] = defaultdict(list)
    for result in results:
        groups[result.series or series_key(Path(result.source))].append(result)
    out = []
    for key, members in groups.items():
        usable = [m for m in members if not m.abstain and m.probabilities]
        scores = [m.ood_score for m in members if m.ood_score is not None]
        entry = Prediction(source=key, series=f"{len(usable)}/{len(members)} images used")
        entry.ood_score = round(float(np.median(scores)), 4) if scores else None
        if usable:
            mean = np.mean([[m.probabilities[c] for c in class_names] for m in usable], axis=0)
            entry.probabilities = {c: round(float(p), 6) for c, p in zip(class_names, mean, strict=True)}
            entry.label = class_names[int(np.argmax(mean))]
            entry.abstain = False
        out.append(entry)
    return out
