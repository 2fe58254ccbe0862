"""Export a ``Classifier`` (any head) to a portable bundle, checked before it is written.

Steps: trace the whole classifier (backbone + head) to ONNX with a second output, the spatially
pooled map the head reads, which feeds the OOD gate; convert that ONNX to OpenVINO IR (fp32, no
fp16 compression); make the ONNX graph read its weights from the IR's ``model.bin`` (ONNX external
data with offsets), so the bundle holds one fp32 copy of the weights instead of two; optionally
quantise the IR to INT8 with NNCF on the classifier's own support images; fit the OOD gate on the
support embeddings; then open the bundle with the offline runtime itself and compare torch,
onnxruntime and OpenVINO outputs on those real images. Nothing is written unless parity holds.
"""

from __future__ import annotations

import copy
import datetime as _dt
import io
import platform
import re
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from zsmed import __version__
from zsmed.bundle.graph import optimise_onnx
from zsmed.bundle.privacy import check_card, check_tensors
from zsmed.classifier import Classifier
from zsmed.errors import ExportError, ZsmedError
from zsmed.imageio import candidate_images, read_model_input
from zsmed.log import get_logger
from zsmed.progress import Job, Progress
from zsmed.runtime import format as fmt
from zsmed.runtime.format import write_bundle as assemble_bundle
from zsmed.runtime.ood import fit_ood, ood_scores
from zsmed.runtime.predict import softmax

log = get_logger(__name__)

DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-4
INT8_MIN_AGREEMENT = 0.99
INT8_MAX_ACCURACY_LOSS = 0.01  # one point
MAX_CALIBRATION = 300
MIN_CALIBRATION = 8
DEFAULT_INTENDED_USE = (
    "Decision support for trained staff on images like the support set described in this card; "
    "not a diagnosis. Where it gives no result (it abstains: the image is unlike its examples), read the "
    "image without it."
)


# --------------------------------------------------------------------------------------------
# Calibration images
# --------------------------------------------------------------------------------------------
@dataclass
class CalibrationSet:
    pixels: np.ndarray  # (N, 3, S, S) model inputs
    labels: np.ndarray | None  # class index per image, when subfolders name the classes
    skipped: list[str] = field(default_factory=list)
    input_kinds: list[str] = field(default_factory=list)  # "photo" / DICOM Modality codes of the images


def load_calibration(folder: str | Path, classifier: Classifier, limit: int = MAX_CALIBRATION) -> CalibrationSet:
    """Images under ``folder`` (recursively). Subfolders named like the classes give labels."""
    root = Path(folder)
    if not root.is_dir():
        raise ExportError(f"calibration folder not found: {root}")
    by_name = {name.lower(): i for i, name in enumerate(classifier.class_names)}
    files = candidate_images(root)
    # Subfolders that name none of the model's classes are another model's support set (a skin
    # folder handed to a chest model): calibrated on them, the OOD gate would let that domain in.
    subfolders = {p.relative_to(root).parts[0] for p in files if p.parent != root}
    others = sorted(name for name in subfolders if name.lower() not in by_name)
    if others:
        raise ExportError(
            f"the calibration folder {root} has subfolder(s) {', '.join(others)} that name none of the model's "
            f"classes ({', '.join(classifier.class_names)}): give the classifier's own support images, in "
            "folders named by class or all in one folder"
        )
    # Spread the pick over the classes instead of taking the first class's files only.
    if len(files) > limit:
        idx = np.linspace(0, len(files) - 1, limit).round().astype(int)
        files = [files[i] for i in sorted(set(idx.tolist()))]
    labels = []
    for path in files:
        rel = path.relative_to(root).parts
        labels.append(by_name.get(rel[0].lower(), -1) if len(rel) > 1 else -1)
    return _read_calibration(files, labels, classifier, f"the calibration folder {root}")


def calibration_from_support(support: Mapping[str, Sequence[Path]], classifier: Classifier,
                             limit: int = MAX_CALIBRATION) -> CalibrationSet:
    """The classifier's own support images (class -> files), labelled by class: what the app's
    builder exports with."""
    index = {name: i for i, name in enumerate(classifier.class_names)}
    unknown = sorted(set(support) - set(index))
    if unknown:
        raise ExportError(f"support class(es) {', '.join(unknown)} are not classes of the model")
    pairs = [(Path(path), index[label]) for label, paths in support.items() for path in paths]
    if len(pairs) > limit:
        pick = np.linspace(0, len(pairs) - 1, limit).round().astype(int)
        pairs = [pairs[i] for i in sorted(set(pick.tolist()))]
    return _read_calibration([p for p, _ in pairs], [label for _, label in pairs], classifier, "the support set")


def _read_calibration(files: Sequence[Path], labels: Sequence[int], classifier: Classifier, where: str
                      ) -> CalibrationSet:
    """Model inputs of ``files`` (unreadable ones skipped, by name); labels -1 = unknown."""
    pixels, kept, skipped = [], [], []
    for path, label in zip(files, labels, strict=True):
        try:
            pixels.append(read_model_input(path, classifier.preprocess))
        except ZsmedError as exc:
            skipped.append(f"{path.name}: {exc.reason}")
            continue
        kept.append(label)
    if len(pixels) < MIN_CALIBRATION:
        raise ExportError(
            f"{where} has {len(pixels)} usable images; at least {MIN_CALIBRATION} of the "
            "classifier's support images are needed (parity check and OOD gate)"
        )
    label_array = np.asarray(kept)
    from zsmed.runtime.input_kinds import input_kinds_of

    return CalibrationSet(np.stack(pixels), label_array if (label_array >= 0).all() else None, skipped,
                          input_kinds_of(files))


# --------------------------------------------------------------------------------------------
# Graph preparation
# --------------------------------------------------------------------------------------------
class _StaticPadConv(nn.Conv2d):
    """A TF-'same' conv with its padding computed for the fixed input size: the ONNX graph gets
    constant pads (or the conv's own symmetric padding) instead of Shape/Gather arithmetic."""

    pads: tuple[int, int, int, int]  # left, right, top, bottom

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left, right, top, bottom = self.pads
        if left == right and top == bottom:
            return F.conv2d(x, self.weight, self.bias, self.stride, (top, left), self.dilation, self.groups)
        return F.conv2d(F.pad(x, [left, right, top, bottom]), self.weight, self.bias, self.stride, 0,
                        self.dilation, self.groups)


def _static_padding(model: Classifier, size: int) -> Classifier:
    """Copy of ``model`` with every dynamic same-padding conv replaced by a static one."""
    from zsmed.encoders.efficientnet_lite import _same_pad, _SameConv  # noqa: F401  (the class we rewrite)

    model = copy.deepcopy(model).eval()
    shapes: dict[str, tuple[int, int]] = {}
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, _SameConv):
            def hook(mod: nn.Module, args: tuple[torch.Tensor, ...], key: str = name) -> None:
                shapes[key] = (int(args[0].shape[-2]), int(args[0].shape[-1]))

            hooks.append(module.register_forward_pre_hook(hook))
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for handle in hooks:
        handle.remove()
    for name, (height, width) in shapes.items():
        module = model.get_submodule(name)
        assert isinstance(module, nn.Conv2d)
        kernel, stride = int(module.kernel_size[0]), int(module.stride[0])
        pad_h = max((-(-height // stride) - 1) * stride + kernel - height, 0)
        pad_w = max((-(-width // stride) - 1) * stride + kernel - width, 0)
        module.__class__ = _StaticPadConv
        module.pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)  # type: ignore[assignment]
    return model


class ExportModule(nn.Module):
    """pixels -> (logits, embedding). The embedding is what the head reads, spatially averaged
    when it is a map: the OOD gate measures distance in the space the head actually uses."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.backbone = classifier.backbone
        self.head = classifier.head
        self.colour = classifier.colour  # the colour branch, computed in the graph from the same pixels

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(pixels)
        logits = self.head(features)
        if self.colour is not None:
            logits = logits + self.colour(pixels)
        embedding = features.mean(dim=(2, 3)) if features.dim() == 4 else features.flatten(1)
        return logits, embedding


def torch_outputs(module: nn.Module, pixels: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    logits, embeddings = [], []
    with torch.inference_mode():
        for start in range(0, len(pixels), batch):
            lo, em = module(torch.from_numpy(np.ascontiguousarray(pixels[start : start + batch])))
            logits.append(lo.float().numpy())
            embeddings.append(em.float().numpy())
    return np.concatenate(logits), np.concatenate(embeddings)


def export_onnx(module: nn.Module, size: int, opset: int = DEFAULT_OPSET) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter warns about its own deprecation and about traced Python ints.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (torch.zeros(2, 3, size, size),),
            buffer,  # type: ignore[arg-type]  # file-like objects are accepted
            dynamo=False,
            opset_version=opset,
            input_names=[fmt.INPUT_NAME],
            output_names=[fmt.OUTPUT_LOGITS, fmt.OUTPUT_EMBEDDING],
            dynamic_axes={name: {0: "batch"} for name in (fmt.INPUT_NAME, fmt.OUTPUT_LOGITS, fmt.OUTPUT_EMBEDDING)},
            do_constant_folding=True,  # folds BatchNorm into the convolutions
        )
    return buffer.getvalue()


_CONST = re.compile(r'<data element_type="f32" shape="[^"]*" offset="(\d+)" size="(\d+)"')


def share_weights(onnx_bytes: bytes, xml: bytes, weights: bytes) -> tuple[bytes, dict[str, Any]]:
    """Point ONNX float initializers at identical byte ranges of the IR's ``model.bin``.

    Both backends then read one stored copy. An initializer with no identical range in the IR
    (e.g. one OpenVINO folded differently) stays inside model.onnx: correctness never depends on
    the sharing, only the size does."""
    import hashlib

    import onnx
    from onnx import external_data_helper, numpy_helper

    ranges: dict[str, tuple[int, int]] = {}
    for match in _CONST.finditer(xml.decode()):
        offset, size = int(match.group(1)), int(match.group(2))
        ranges.setdefault(hashlib.sha256(weights[offset : offset + size]).hexdigest(), (offset, size))
    model = onnx.load_from_string(onnx_bytes)
    shared = kept = 0
    shared_bytes = kept_bytes = 0
    for tensor in model.graph.initializer:
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        raw = numpy_helper.to_array(tensor).astype("<f4").tobytes()
        hit = ranges.get(hashlib.sha256(raw).hexdigest())
        if hit is None or len(raw) < 64:
            kept += 1
            kept_bytes += len(raw)
            continue
        external_data_helper.set_external_data(tensor, fmt.IR_BIN, offset=hit[0], length=hit[1])
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        shared += 1
        shared_bytes += len(raw)
    stats = {"shared_tensors": shared, "shared_bytes": shared_bytes, "inline_tensors": kept, "inline_bytes": kept_bytes}
    return model.SerializeToString(), stats


def _initializer_shapes(onnx_bytes: bytes) -> dict[str, tuple[int, ...]]:
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return {t.name: tuple(t.dims) for t in model.graph.initializer}


def _software() -> dict[str, str]:
    versions = {"zsmed": __version__, "python": platform.python_version(), "torch": torch.__version__}
    for name in ("onnx", "onnxruntime", "openvino", "nncf", "numpy"):
        try:
            module = __import__(name)
            versions[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            pass
    return versions


# --------------------------------------------------------------------------------------------
# The export job
# --------------------------------------------------------------------------------------------
@dataclass
class ExportReport:
    path: Path
    size_bytes: int
    parity: dict[str, float]
    int8: dict[str, Any]
    ood: dict[str, Any]
    weights: dict[str, Any]
    signed: bool
    skipped: list[str] = field(default_factory=list)


def quantise_int8(model: Any, pixels: np.ndarray) -> Any:
    """NNCF post-training INT8 of an OpenVINO model (MIXED preset), calibrated on ``pixels``, one
    image a sample: what export ships and what the benchmark times when a bundle has no INT8."""
    import nncf

    dataset = nncf.Dataset([pixels[i : i + 1] for i in range(len(pixels))])
    return nncf.quantize(model, dataset, subset_size=len(pixels), preset=nncf.QuantizationPreset.MIXED)


def _quantise_int8(xml_path: Path, pixels: np.ndarray, out_dir: Path) -> tuple[bytes, bytes]:
    import openvino as ov

    quantised = quantise_int8(ov.Core().read_model(str(xml_path)), pixels)
    ov.save_model(quantised, str(out_dir / fmt.INT8_XML), compress_to_fp16=False)
    return (out_dir / fmt.INT8_XML).read_bytes(), (out_dir / fmt.INT8_BIN).read_bytes()


def export_job(
    classifier: Classifier,
    out: str | Path,
    calibration: CalibrationSet,
    *,
    int8: bool = False,
    sign_key: str | Path | None = None,
    site: str = "",
    intended_use: str | None = None,
    opset: int = DEFAULT_OPSET,
) -> Job[ExportReport]:
    """Export ``classifier`` to ``out``; yields ``Progress``, returns an ``ExportReport``."""
    import openvino as ov

    from zsmed.runtime.backends import create_backend
    from zsmed.runtime.bundle import read_bundle

    out = Path(out)
    total = 7 if int8 else 6
    size = classifier.preprocess.size
    card = classifier.card
    # 1. privacy of the card before any work
    yield Progress(0, total, "checking the card")
    created = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    model_card: dict[str, Any] = {
        "bundle_format_version": fmt.FORMAT_VERSION,
        "method": card.method,
        "class_names": list(card.class_names),
        "descriptions": dict(card.descriptions),
        "intended_use": intended_use or str(card.extra.get("intended_use") or DEFAULT_INTENDED_USE),
        "encoder": card.encoder.to_dict(),
        "preprocess": card.preprocess.to_dict(),
        "head_type": card.head_type,
        "head_module": card.head_module,
        "head_config": classifier.head.config(),
        "support_counts": dict(card.support_counts),
        "metrics": dict(card.metrics),
        "extra": {k: v for k, v in card.extra.items() if k != "intended_use"},
        "created": card.created,
        "exported": created,
        "site": site,
        "software": {"build": dict(card.software), "export": _software()},
    }
    # the kinds of images it was built on (else those of its calibration images, the support set)
    input_kinds = list(card.input_kinds) or calibration.input_kinds
    if input_kinds:
        model_card["input_kinds"] = input_kinds
    check_card(model_card)

    # 2. torch reference outputs on the real images, OOD gate
    yield Progress(1, total, "torch reference")
    module = ExportModule(_static_padding(classifier, size)).eval()
    ref_logits, ref_embedding = torch_outputs(ExportModule(classifier).eval(), calibration.pixels)
    static_logits, _ = torch_outputs(module, calibration.pixels)
    if not np.allclose(softmax(static_logits), softmax(ref_logits), atol=1e-5):
        raise ExportError("internal: static padding changed the classifier's outputs")
    ood_arrays, ood_settings = fit_ood(ref_embedding)
    ood_buffer = io.BytesIO()
    np.savez(ood_buffer, **ood_arrays)  # type: ignore[arg-type]

    # 3. ONNX and OpenVINO IR
    yield Progress(2, total, "ONNX export")
    onnx_bytes = optimise_onnx(export_onnx(module, size, opset))
    check_tensors(_initializer_shapes(onnx_bytes), size)
    with tempfile.TemporaryDirectory(prefix="zsmed-export-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "full.onnx").write_bytes(onnx_bytes)
        yield Progress(3, total, "OpenVINO IR")
        ov_model = ov.convert_model(str(tmp / "full.onnx"))
        # compress_to_fp16=False: the IR is declared fp32 and must be fp32.
        ov.save_model(ov_model, str(tmp / fmt.IR_XML), compress_to_fp16=False)
        xml, weights = (tmp / fmt.IR_XML).read_bytes(), (tmp / fmt.IR_BIN).read_bytes()
        shared_onnx, weight_stats = share_weights(onnx_bytes, xml, weights)
        int8_files: dict[str, bytes] = {}
        if int8:
            yield Progress(4, total, "INT8 quantisation")
            int8_xml, int8_bin = _quantise_int8(tmp / fmt.IR_XML, calibration.pixels, tmp)
            int8_files = {fmt.INT8_XML: int8_xml, fmt.INT8_BIN: int8_bin}

    files = {
        fmt.ONNX: shared_onnx,
        fmt.IR_XML: xml,
        fmt.IR_BIN: weights,
        fmt.OOD: ood_buffer.getvalue(),
    }
    model_card["onnx"] = {
        "opset": opset,
        "input": {"name": fmt.INPUT_NAME, "shape": ["batch", 3, size, size], "dtype": "float32"},
        "outputs": {
            fmt.OUTPUT_LOGITS: ["batch", len(card.class_names)],
            fmt.OUTPUT_EMBEDDING: ["batch", int(ref_embedding.shape[1])],
        },
        "weights": weight_stats,
    }
    model_card["ood_gate"] = ood_settings

    # 4. parity through the runtime itself, from a provisional bundle
    yield Progress(total - 2, total, "parity check")
    provisional = out.with_name(out.name + ".check")
    try:
        trial = dict(files, **int8_files)
        trial[fmt.CARD] = json_bytes(model_card)
        assemble_bundle(provisional, trial, opset=opset, created=created)
        bundle = read_bundle(provisional)
        ref_probs = softmax(ref_logits)
        ref_ood = ood_scores(ref_embedding, ood_arrays)
        parity: dict[str, float] = {}
        outputs: dict[str, np.ndarray] = {}
        for name in ("onnxruntime", "openvino"):
            backend = create_backend(bundle, name)
            logits, embedding = _run_all(backend, calibration.pixels)
            probs = softmax(logits)
            outputs[name] = probs
            parity[f"{name}_max_abs_prob_diff"] = float(np.abs(probs - ref_probs).max())
            parity[f"{name}_max_rel_ood_diff"] = float(
                np.max(np.abs(ood_scores(embedding, ood_arrays) - ref_ood) / np.maximum(ref_ood, 1e-6))
            )
            if parity[f"{name}_max_abs_prob_diff"] > PARITY_TOLERANCE:
                raise ExportError(
                    f"parity check failed: {name} probabilities differ from torch by up to "
                    f"{parity[f'{name}_max_abs_prob_diff']:.2e} (tolerance {PARITY_TOLERANCE:g}); nothing written"
                )
        parity["images"] = float(len(calibration.pixels))
        int8_report: dict[str, Any] = {"requested": int8, "accepted": False}
        if int8:
            yield Progress(total - 1, total, "INT8 check")
            int8_report.update(_check_int8(bundle, calibration, ref_probs))
            if not int8_report["accepted"]:
                for name in int8_files:
                    trial.pop(name)
                log.warning("INT8 refused: %s", int8_report["reason"])
    finally:
        provisional.unlink(missing_ok=True)

    model_card["parity"] = {"tolerance": PARITY_TOLERANCE, **parity}
    model_card["int8"] = int8_report
    trial[fmt.CARD] = json_bytes(model_card)
    assemble_bundle(out, trial, opset=opset, sign_key=sign_key, created=created)
    yield Progress(total, total, "written")
    return ExportReport(
        path=out,
        size_bytes=out.stat().st_size,
        parity=parity,
        int8=int8_report,
        ood=ood_settings,
        weights=weight_stats,
        signed=sign_key is not None,
        skipped=calibration.skipped,
    )


def json_bytes(data: dict[str, Any]) -> bytes:
    import json

    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode()


def _run_all(backend: Any, pixels: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    logits, embeddings = [], []
    for start in range(0, len(pixels), batch):
        lo, em = backend.run(np.ascontiguousarray(pixels[start : start + batch]))
        logits.append(lo)
        embeddings.append(em)
    return np.concatenate(logits), np.concatenate(embeddings)


INT8_CHECK_FOLDS = 2


def held_out_int8_probabilities(bundle: Any, pixels: np.ndarray, folds: int = INT8_CHECK_FOLDS) -> np.ndarray:
    """Each calibration image's INT8 probabilities from a model quantised *without* it (``folds``
    interleaved folds). Scored by the model that was calibrated on them, the images flatter it:
    with bias correction one setting agreed 100 % on its own calibration images and 96 % on others
    (docs/BENCHMARKS.md, session 3)."""
    import openvino as ov

    from zsmed.runtime.backends import read_ir

    core = ov.Core()
    probs = np.empty((len(pixels), len(bundle.class_names)))
    for fold in range(folds):
        held = np.arange(len(pixels)) % folds == fold
        compiled = core.compile_model(quantise_int8(read_ir(core, bundle), pixels[~held]), "CPU")
        logits = compiled(np.ascontiguousarray(pixels[held]))[compiled.output(fmt.OUTPUT_LOGITS)]
        probs[held] = softmax(np.asarray(logits))
    return probs


def _check_int8(bundle: Any, calibration: CalibrationSet, ref_probs: np.ndarray) -> dict[str, Any]:
    """INT8 is kept only if it agrees, keeps accuracy (both on images its quantisation did not see)
    and is actually faster here."""
    from zsmed.runtime.backends import create_backend, time_backend

    int8_backend = create_backend(bundle, "openvino-int8")
    fp32_backend = create_backend(bundle, "openvino")
    probs = held_out_int8_probabilities(bundle, calibration.pixels)
    agreement = float(np.mean(probs.argmax(1) == ref_probs.argmax(1)))
    shipped = softmax(_run_all(int8_backend, calibration.pixels)[0])
    report: dict[str, Any] = {
        "top1_agreement": round(agreement, 4), "images": len(probs),
        "check": f"each image scored by an INT8 model calibrated without it ({INT8_CHECK_FOLDS} folds); the "
                 "shipped model is calibrated on all of them",
        "top1_agreement_on_its_own_calibration_images": round(float(np.mean(shipped.argmax(1) == ref_probs.argmax(1))),
                                                              4),
    }
    reasons = []
    if calibration.labels is not None:
        acc32 = float(np.mean(ref_probs.argmax(1) == calibration.labels))
        acc8 = float(np.mean(probs.argmax(1) == calibration.labels))
        report.update(accuracy_fp32=round(acc32, 4), accuracy_int8=round(acc8, 4))
        if acc32 - acc8 > INT8_MAX_ACCURACY_LOSS:
            reasons.append(f"accuracy falls from {acc32:.2%} to {acc8:.2%} (> 1 point)")
    else:
        report["accuracy"] = "not measured: calibration subfolders do not name the classes"
    if agreement < INT8_MIN_AGREEMENT:
        reasons.append(f"top-1 agreement with fp32 is {agreement:.2%} (< 99 %)")
    size = calibration.pixels.shape[-1]
    ms32 = min(time_backend(fp32_backend, size) for _ in range(2))
    ms8 = min(time_backend(int8_backend, size) for _ in range(2))
    report.update(ms_per_image_fp32=round(ms32, 3), ms_per_image_int8=round(ms8, 3), speedup=round(ms32 / ms8, 3))
    if ms8 >= ms32:
        reasons.append(f"not faster on this CPU ({ms8:.2f} ms vs {ms32:.2f} ms per image)")
    report["accepted"] = not reasons
    if reasons:
        report["reason"] = "; ".join(reasons)
    return report


def export_classifier(
    classifier: Classifier,
    out: str | Path,
    calibration_dir: str | Path,
    **kwargs: Any,
) -> ExportReport:
    from zsmed.progress import run_job

    calibration = load_calibration(calibration_dir, classifier)
    return run_job(export_job(classifier, out, calibration, **kwargs))


__all__: Sequence[str] = [
    "CalibrationSet",
    "ExportReport",
    "calibration_from_support",
    "export_classifier",
    "export_job",
    "load_calibration",
]
