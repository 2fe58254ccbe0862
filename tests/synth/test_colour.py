"""The colour branch of the dermoscopy generator (zsmed.synth.colour): the colour numbers of known colours,
the shipped statistics accepting HAM10000 photographs and refusing another dermatoscope's and a chest X-ray,
a classifier carrying the branch saved, read back and exported (the torch-free runtime computes the same
scores), a model file whose colour weights and card disagree refused, and the evaluation's fusion."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zsmed.classifier import load_classifier, save_classifier
from zsmed.errors import CheckpointError
from zsmed.imageio import read_image
from zsmed.preprocess import PreprocessConfig, batch_model_inputs
from zsmed.synth.checkpoint import default_checkpoint_path
from zsmed.synth.colour import (
    N_COLOUR,
    BankColour,
    ColourBranch,
    colour_features,
    fit_colour_stats,
    lab_of,
    read_colour_stats,
    read_colour_stats_file,
)

PREPROCESS = PreprocessConfig()
# the thirteenth round's candidate (HAM10000 base, weight 1): measured, not shipped (docs/bench/fewshot.md)
CANDIDATE = (Path(__file__).resolve().parents[2] / "docs" / "bench" / "fewshot"
             / "issue16_s13_colour_candidate.colour.json")


def uniform(rgb: tuple[int, int, int], size: int = 224) -> torch.Tensor:
    """A model input of one colour (8-bit sRGB), normalised as PREPROCESS says."""
    unit = torch.tensor(rgb, dtype=torch.float32).view(1, 3, 1, 1) / 255.0
    return ((unit - 0.5) / 0.5).expand(1, 3, size, size).clone()


def test_lab_of_known_colours() -> None:
    """White and black at L 100 and 0 with no colour; sRGB red at L 53.2, a* 80.1, b* 67.2 (D65)."""
    white, black, red = (lab_of(uniform(c, 8), PREPROCESS)[0, :, 0, 0] for c in ((255, 255, 255), (0, 0, 0),
                                                                                  (255, 0, 0)))
    np.testing.assert_allclose(white.numpy(), [255.0, 128.0, 128.0], atol=0.1)  # L x 2.55, a* and b* + 128
    np.testing.assert_allclose(black.numpy(), [0.0, 128.0, 128.0], atol=0.1)
    np.testing.assert_allclose(red.numpy(), [53.24 * 2.55, 80.09 + 128, 67.20 + 128], atol=0.3)


def test_colour_numbers_of_a_lesion_on_skin() -> None:
    """A brown centre on pink skin: the centre's Lab mean, no spread, its difference from the skin, and a
    histogram with all of the centre in one a*b* bin."""
    skin, lesion = uniform((230, 180, 170)), uniform((120, 80, 60))
    image = skin.clone()
    image[:, :, 56:168, 56:168] = lesion[:, :, 56:168, 56:168]
    features = colour_features(image, PREPROCESS)[0]
    assert features.shape == (N_COLOUR,)
    lab_lesion, lab_skin = (lab_of(x, PREPROCESS)[0, :, 0, 0] for x in (lesion, skin))
    np.testing.assert_allclose(features[:3].numpy(), (lab_lesion / 64).numpy(), atol=1e-4)
    np.testing.assert_allclose(features[3:6].numpy(), 0.0, atol=1e-3)
    np.testing.assert_allclose(features[6:9].numpy(), ((lab_lesion - lab_skin) / 64).numpy(), atol=1e-4)
    histogram = features[9:] ** 2
    assert float(histogram.sum()) == pytest.approx(1.0) and int((histogram > 0).sum()) == 1


def photo_features(paths: list[Path]) -> np.ndarray:
    pixels = batch_model_inputs([read_image(p) for p in paths], PREPROCESS)
    return colour_features(torch.as_tensor(pixels), PREPROCESS).numpy()


def test_the_candidate_statistics_know_their_collection(shared_data: Path) -> None:
    assert read_colour_stats(default_checkpoint_path()) is None  # not shipped: it did not beat at 5-shot
    stats = read_colour_stats_file(CANDIDATE)
    assert stats.weight == 1.0 and stats.fitted_on.startswith("HAM10000")
    assert stats.preprocess == PREPROCESS and stats.images == 2338
    ham = photo_features(sorted((shared_data / "ham10000_fs" / "base" / "nv").glob("*.jpg"))[:40])
    accepted = stats.distances(ham) <= stats.threshold
    assert accepted.mean() >= 0.9  # 99 % of the collection's own images lie within the threshold
    chest = photo_features(sorted((shared_data / "cxr_kermany" / "NORMAL").glob("*"))[:3])
    assert all(not stats.accepts(chest[k:k + 1]) for k in range(3))  # grey: no colours to compare
    assert stats.grey(chest).all() and not stats.grey(ham).any()
    derm7pt = photo_features(sorted((shared_data / "derm7pt" / "NEV").glob("*"))[:20])
    assert (stats.distances(derm7pt) > stats.threshold).mean() >= 0.2  # another dermatoscope's cast
    assert read_colour_stats(default_checkpoint_path().with_name("sgps-cxr_efficientnet-lite0.safetensors")) is None


def test_fitted_statistics_accept_their_own_images_at_the_quantile() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(400, N_COLOUR))
    stats = fit_colour_stats(features, PREPROCESS, weight=0.5, fitted_on="test", quantile=0.9)
    assert (stats.distances(features) <= stats.threshold).mean() == pytest.approx(0.9, abs=0.01)
    assert stats.from_dict(json.loads(json.dumps(stats.to_dict()))) == stats


def classifier_with_colour(shared_data: Path) -> object:
    """A classifier synthesised from HAM10000 photographs whose colours the branch accepts (1-shot: no
    leave-one-out, so the generator is kept and carries the branch)."""
    from zsmed.synth.synthesize import synthesize

    stats = read_colour_stats_file(CANDIDATE)
    chosen = {}
    for label in ("bkl", "nv"):
        files = sorted((shared_data / "ham10000_fs" / "base" / label).glob("*.jpg"))[:20]
        inside = stats.distances(photo_features(files)) <= stats.threshold
        chosen[label] = [files[int(np.argmax(inside))]]
    assert synthesize(chosen).colour is None  # what ships: no colour branch
    classifier = synthesize(chosen, colour_stats=CANDIDATE)
    assert classifier.card.method == "sgps-hybrid" and classifier.colour is not None  # type: ignore[attr-defined]
    return classifier


def test_a_classifier_carries_the_branch_through_its_file_and_bundle(shared_data: Path, tmp_path: Path) -> None:
    from zsmed.bundle.export import export_classifier
    from zsmed.runtime.predict import load_predictor

    classifier = classifier_with_colour(shared_data)
    colour = classifier.card.extra["colour"]  # type: ignore[attr-defined]
    assert colour["used"] and colour["weight"] == 1.0 and colour["reason"].startswith("colour numbers added")
    queries = sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[:6]
    pixels = torch.as_tensor(batch_model_inputs([read_image(p) for p in queries], PREPROCESS))
    with torch.inference_mode():
        without = classifier.head(classifier.backbone(pixels))  # type: ignore[attr-defined]
        added = classifier.colour(pixels)  # type: ignore[attr-defined]
    assert float(added.abs().max()) > 0.05  # the branch moves the scores
    np.testing.assert_allclose(classifier.predict_proba(pixels), torch.softmax(without + added, -1).numpy(),  # type: ignore[attr-defined]
                               atol=1e-6)
    path = save_classifier(classifier, tmp_path / "colour.zsm")  # type: ignore[arg-type]
    again = load_classifier(path)
    np.testing.assert_allclose(again.predict_proba(pixels), classifier.predict_proba(pixels), atol=1e-6)  # type: ignore[attr-defined]
    calibration = tmp_path / "calibration"
    for label in ("bkl", "nv"):
        (calibration / label).mkdir(parents=True)
        for file in sorted((shared_data / "ham10000_fs" / "base" / label).glob("*.jpg"))[:5]:
            (calibration / label / file.name).write_bytes(file.read_bytes())
    report = export_classifier(again, tmp_path / "colour.zsmb", calibration)
    assert max(v for k, v in report.parity.items() if k.endswith("max_abs_prob_diff")) < 1e-4
    for backend in ("onnxruntime", "openvino"):  # torch-free: the colour numbers come from the bundle's graph
        predictor = load_predictor(tmp_path / "colour.zsmb", backend=backend, allow_unsigned=True)
        probabilities, _ood = predictor.infer(pixels.numpy())
        np.testing.assert_allclose(probabilities, again.predict_proba(pixels), atol=1e-4)


def test_colour_weights_and_card_must_agree(shared_data: Path, tmp_path: Path) -> None:
    classifier = classifier_with_colour(shared_data)
    path = save_classifier(classifier, tmp_path / "colour.zsm")  # type: ignore[arg-type]
    with zipfile.ZipFile(path) as archive:
        card, weights = json.loads(archive.read("model.json")), archive.read("weights.safetensors")

    def rewritten(name: str, new_card: dict) -> Path:
        target = tmp_path / name
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("model.json", json.dumps(new_card))
            archive.writestr("weights.safetensors", weights)
        return target

    unused = json.loads(json.dumps(card))
    unused["extra"]["colour"]["used"] = False
    with pytest.raises(CheckpointError, match="colour weights its card does not describe"):
        load_classifier(rewritten("unused.zsm", unused))
    more_classes = json.loads(json.dumps(card))
    more_classes["extra"]["colour"]["weight"] = "heavy"
    with pytest.raises(CheckpointError, match="colour branch has no weight"):
        load_classifier(rewritten("weight.zsm", more_classes))


def test_another_dermatoscope_builds_without_colour_and_the_card_says_why(shared_data: Path) -> None:
    from zsmed.synth.synthesize import synthesize

    stats = read_colour_stats_file(CANDIDATE)
    chosen = {}
    for label in ("NEV", "SK"):
        files = sorted((shared_data / "derm7pt" / label).glob("*"))[:30]
        outside = stats.distances(photo_features(files)) > stats.threshold
        chosen[label] = [files[int(np.argmax(outside))]]
    classifier = synthesize(chosen, colour_stats=CANDIDATE)
    colour = classifier.card.extra["colour"]
    assert classifier.colour is None and not colour["used"]
    assert "not those of HAM10000" in colour["reason"] and colour["largest_distance"] > colour["threshold"]


def test_the_evaluation_fuses_colour_only_where_the_support_is_accepted(shared_data: Path) -> None:
    stats = read_colour_stats_file(CANDIDATE)
    files = sorted((shared_data / "ham10000_fs" / "base" / "nv").glob("*.jpg"))[:6]
    files += sorted((shared_data / "ham10000_fs" / "base" / "mel").glob("*.jpg"))[:6]
    bank = BankColour(stats, files)
    features = bank.features(np.arange(12))
    support = np.array([[i for i in range(6) if stats.distances(features[i:i + 1])[0] <= stats.threshold][:2],
                        [i for i in range(6, 12) if stats.distances(features[i:i + 1])[0] <= stats.threshold][:2]])
    query = np.array([k for k in range(12) if k not in support])
    probabilities = np.full((len(query), 2), 0.5)
    fused = bank.fuse(probabilities, support, query)
    assert fused is not None
    unit = stats.standardised(torch.as_tensor(features))
    prototypes = torch.nn.functional.normalize(unit[torch.as_tensor(support)].mean(dim=1), dim=-1)
    expected = torch.softmax(torch.log(torch.full((len(query), 2), 0.5)) + unit[query] @ prototypes.t(), -1)
    np.testing.assert_allclose(fused, expected.numpy(), atol=1e-6)
    branch = ColourBranch.of(stats, prototypes.numpy())
    pixels = torch.as_tensor(batch_model_inputs([read_image(files[k]) for k in query], PREPROCESS))
    np.testing.assert_allclose(torch.softmax(branch(pixels), -1).numpy(), fused, atol=1e-5)  # build = eval
    outside = BankColour(stats, [*files[:2], *sorted((shared_data / "cxr_kermany" / "NORMAL").glob("*"))[:2]])
    assert outside.fuse(np.full((2, 2), 0.5), np.array([[0], [2]]), np.array([1, 3])) is None  # a chest X-ray


def test_eval_takes_candidate_statistics_and_says_how_often_the_branch_was_used(
        shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from zsmed.cli.main import main

    folder = tmp_path / "pairs"
    for label in ("nv", "mel"):
        (folder / label).mkdir(parents=True)
        for file in sorted((shared_data / "ham10000_fs" / "base" / label).glob("*.jpg"))[:6]:
            (folder / label / file.name).write_bytes(file.read_bytes())
    out = tmp_path / "eval.json"
    assert main(["eval", "fewshot", str(folder), "--ways", "2", "--shots", "1", "--queries", "2", "--episodes", "4",
                 "--methods", "sgps,sgps-nocolour", "--colour-stats", str(CANDIDATE), "--json", str(out)]) == 0
    assert "colour branch used in" in capsys.readouterr().out
    results = {r["method"]: r for r in json.loads(out.read_text())["results"]}
    assert results["sgps"]["extra"]["colour_episodes"] == 4 and "colour_episodes" not in results["sgps-nocolour"].get(
        "extra", {})
