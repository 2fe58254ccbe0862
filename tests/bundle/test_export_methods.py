"""Every method's classifier exports to a bundle and predicts the same through the runtime.

The few-shot (SGPS hybrid head on the trunk map), zero-shot (cosine head with centring and a
whitening projection) and stitched (linear map + inner head, on another encoder) classifiers are
built from real images and go through the same export (which refuses on a parity failure) and
then through the torch-free runtime on images the export never saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.synth.helpers import every_image_wrong
from zsmed.bundle.export import export_classifier
from zsmed.classifier import Classifier, LinearHead, make_classifier
from zsmed.encoders import create_image_encoder
from zsmed.preprocess import batch_model_inputs
from zsmed.runtime.predict import load_predictor

CLASSES = ("bcc", "nv")


@pytest.fixture(scope="module")
def folders(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """A support folder (6 images per class) and 6 query images of the same classes."""
    root = tmp_path_factory.mktemp("methods")
    support = root / "support"
    queries: list[Path] = []
    for label in CLASSES:
        files = sorted((shared_data / "ham10000_fs" / "base" / label).glob("*.jpg"))
        (support / label).mkdir(parents=True)
        for path in files[:6]:
            (support / label / path.name).symlink_to(path)
        queries.extend(files[6:9])
    return support, queries


def _features(encoder_name: str, paths: list[Path]) -> np.ndarray:
    from zsmed.imageio import read_image

    encoder = create_image_encoder(encoder_name)
    return encoder.encode(batch_model_inputs([read_image(p) for p in paths], encoder.preprocess))


def _support_files(support: Path) -> dict[str, list[Path]]:
    return {label: sorted((support / label).iterdir()) for label in CLASSES}


def _export_and_compare(classifier: Classifier, support: Path, queries: list[Path], out: Path) -> None:
    report = export_classifier(classifier, out, support)
    assert max(v for k, v in report.parity.items() if k.endswith("_max_abs_prob_diff")) < 1e-4
    torch_probs = classifier.predict_files(queries)
    for backend in ("onnxruntime", "openvino"):
        predictions = load_predictor(out, backend=backend).predict_files(queries)
        runtime_probs = np.array([[p.probabilities[c] for c in classifier.class_names] for p in predictions])
        np.testing.assert_allclose(runtime_probs, torch_probs, atol=1e-4)
    # The classifier means something: most held-out images get their own class.
    truth = [CLASSES.index(Path(q).resolve().parent.name) for q in queries]
    assert (torch_probs.argmax(1) == np.array(truth)).mean() >= 0.5


def test_sgps_classifier_exports(folders: tuple[Path, list[Path]], tmp_path: Path, isolated_dirs: Path) -> None:
    from zsmed.synth.synthesize import synthesize

    support, queries = folders
    # guard=False: this exports the generated head itself (the guard may pick ProtoNet for this support).
    classifier = synthesize(support, guard=False)
    assert classifier.card.head_type.startswith("sgps")
    _export_and_compare(classifier, support, queries, tmp_path / "sgps.zsmb")


def test_guard_fallback_on_the_finetuned_stage_exports(folders: tuple[Path, list[Path]], tmp_path: Path,
                                                       isolated_dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dermoscopy guard's in-domain fallback (ProtoNet on its fine-tuned last stage) is a trunk
    head like the generator's, and goes through the same export."""
    from zsmed.synth import synthesize as synthesize_module

    support, queries = folders
    # The generator's leave-one-out estimate forced to 0 %: the guard turns it down inside its domain.
    monkeypatch.setattr(synthesize_module, "leave_one_out_predictions", every_image_wrong)
    classifier = synthesize_module.synthesize(support)
    assert classifier.card.method == "protonet-finetuned-stage"
    assert classifier.card.extra["fallback_stage"] == "fallback-ham10000_efficientnet-lite0"
    _export_and_compare(classifier, support, queries, tmp_path / "fallback.zsmb")


def test_zeroshot_head_exports(folders: tuple[Path, list[Path]], tmp_path: Path) -> None:
    from zsmed.zeroshot.heads import ZeroShotCosineHead

    support, queries = folders
    files = _support_files(support)
    features = _features("efficientnet-lite0", [p for label in CLASSES for p in files[label]])
    mean = features.mean(0)
    unit = (features - mean) / np.linalg.norm(features - mean, axis=1, keepdims=True)
    centre = unit.mean(0)
    # A whitening-like projection to 8 dims, as the zero-shot path exports one.
    _, _, vt = np.linalg.svd(unit - centre, full_matrices=False)
    proj = vt[:8].T.astype(np.float32)
    z = (unit - centre) @ proj
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    weight = np.stack([z[:6].mean(0), z[6:].mean(0)]).astype(np.float32)
    head = ZeroShotCosineHead.from_arrays(mean, weight, np.array([0.1, -0.1], np.float32), 10.0, centre, proj)
    encoder = create_image_encoder("efficientnet-lite0")
    classifier = make_classifier(head, method="fsigenz", class_names=CLASSES, encoder=encoder.spec)
    _export_and_compare(classifier, support, queries, tmp_path / "zeroshot.zsmb")


def test_stitched_classifier_exports(folders: tuple[Path, list[Path]], tmp_path: Path) -> None:
    from zsmed.align.stitch import stitch_classifier

    support, queries = folders
    files = _support_files(support)
    paths = [p for label in CLASSES for p in files[label]]
    native = _features("efficientnet-lite0", paths)
    other = _features("efficientnet-lite2", paths)
    native_unit = native / np.linalg.norm(native, axis=1, keepdims=True)
    head = LinearHead.from_arrays(np.stack([native_unit[:6].mean(0), native_unit[6:].mean(0)]), cosine=True,
                                  scale=10.0)
    lite0 = create_image_encoder("efficientnet-lite0")
    lite2 = create_image_encoder("efficientnet-lite2")
    classifier = make_classifier(head, method="protonet", class_names=CLASSES, encoder=lite0.spec)
    stitched = stitch_classifier(classifier, lite2.spec, other, native, method="lstsq")
    assert stitched.card.encoder.name == "efficientnet-lite2"
    _export_and_compare(stitched, support, queries, tmp_path / "stitched.zsmb")


def test_chest_xray_classifier_on_the_tuned_encoder_exports(shared_data: Path, tmp_path: Path,
                                                            isolated_dirs: Path) -> None:
    """A chest X-ray support goes to the CXR generator, which runs on its tuned encoder: the card names
    that encoder, the saved model loads back on it (same predictions), and the bundle's torch-free
    runtime agrees with torch."""
    from zsmed.classifier import load_classifier, save_classifier
    from zsmed.synth.synthesize import synthesize

    classes = ("BACTERIA", "NORMAL")
    support, queries = tmp_path / "support", []
    for label in classes:
        files = sorted((shared_data / "cxr_kermany" / label).glob("*.jpeg"))[-9:]
        (support / label).mkdir(parents=True)
        for path in files[:5]:
            (support / label / path.name).symlink_to(path)
        queries.extend(files[5:])
    classifier = synthesize(support)
    assert classifier.card.encoder.name == "efficientnet-lite0-cxr"
    assert classifier.card.extra["generator"]["checkpoint"] == "sgps-cxr_efficientnet-lite0.safetensors"
    save_classifier(classifier, tmp_path / "cxr.zsm")
    reloaded = load_classifier(tmp_path / "cxr.zsm")
    torch_probs = classifier.predict_files(queries)
    np.testing.assert_allclose(reloaded.predict_files(queries), torch_probs, atol=1e-5)
    report = export_classifier(classifier, tmp_path / "cxr.zsmb", support)
    assert max(v for k, v in report.parity.items() if k.endswith("_max_abs_prob_diff")) < 1e-4
    predictions = load_predictor(tmp_path / "cxr.zsmb", backend="onnxruntime").predict_files(queries)
    runtime_probs = np.array([[p.probabilities[c] for c in classifier.class_names] for p in predictions])
    np.testing.assert_allclose(runtime_probs, torch_probs, atol=1e-4)
    truth = [classifier.class_names.index(Path(q).parent.name) for q in queries]
    assert (torch_probs.argmax(1) == np.array(truth)).mean() >= 0.75
    # The card identifies the tuned weights, not the ImageNet ones.
    assert classifier.card.encoder.weights_sha256 != create_image_encoder("efficientnet-lite0").spec.weights_sha256
