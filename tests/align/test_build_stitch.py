"""``zsmed build stitch``: a chest X-ray classifier built on Lite0 moved onto Lite2 with unlabelled
films as anchors, checked on held-out anchors, saved, reloaded and still agreeing with the original."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from zsmed.cli.main import main

CLASSES = ("NORMAL", "BACTERIA", "VIRUS")


def _films(shared_data: Path, name: str) -> list[Path]:
    return [p for p in sorted((shared_data / "cxr_kermany" / name).iterdir()) if p.suffix.lower() == ".jpeg"]


@pytest.fixture(scope="module")
def stitched(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from zsmed.bundle.protonet import build_protonet
    from zsmed.classifier import save_classifier

    work = tmp_path_factory.mktemp("build_stitch")
    support = {name: _films(shared_data, name)[:6] for name in CLASSES}
    model = save_classifier(build_protonet(support), work / "cxr_lite0.zsm")
    anchors = work / "site_images"  # unlabelled: one flat folder, no class names
    anchors.mkdir()
    for name in CLASSES:
        for path in _films(shared_data, name)[6:36]:
            os.symlink(path, anchors / path.name)
    (anchors / "notes.png").write_bytes(b"not an image")  # a stray file must not stop the build
    out = work / "cxr_lite2.zsm"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZSMED_CACHE_DIR", str(work / "cache"))
        code = main(["build", "stitch", str(model), "--encoder", "efficientnet-lite2", "--anchors", str(anchors),
                     "--out", str(out), "--check-fraction", "0.25"])
    tests = [p for name in CLASSES for p in _films(shared_data, name)[36:46]]
    return {"code": code, "model": model, "out": out, "tests": tests, "anchors": anchors}


def test_build_stitch_writes_a_classifier_on_the_new_encoder_with_its_check(stitched: dict) -> None:
    from zsmed.classifier import load_classifier

    assert stitched["code"] == 0
    model = load_classifier(stitched["out"])
    assert model.card.encoder.name == "efficientnet-lite2" and tuple(model.card.class_names) == CLASSES
    extra = model.card.extra
    assert extra["stitched_from"]["name"] == "efficientnet-lite0" and extra["alignment"] == "affine"
    assert extra["n_anchors"] == 90  # the stray file is left out
    check = extra["stitch_check"]
    assert check["held_out"] == 22 and check["fitted_on"] == 68
    assert check["top1_agreement"] >= 0.7 and check["mean_cosine"] > 0.6, check
    print(json.dumps(check))


def test_stitched_classifier_agrees_with_the_original_on_new_films(stitched: dict) -> None:
    import torch

    from zsmed.classifier import load_classifier
    from zsmed.encoders import create_image_encoder
    from zsmed.imageio import read_model_input

    original, moved = load_classifier(stitched["model"]), load_classifier(stitched["out"])
    lite0, lite2 = create_image_encoder("efficientnet-lite0"), create_image_encoder("efficientnet-lite2")
    films = stitched["tests"]
    with torch.inference_mode():
        native = original.head(torch.as_tensor(lite0.encode(np.stack(
            [read_model_input(p, lite0.preprocess) for p in films])))).argmax(1)
        other = moved.head(torch.as_tensor(lite2.encode(np.stack(
            [read_model_input(p, lite2.preprocess) for p in films])))).argmax(1)
    agreement = float((native == other).float().mean())
    print(f"agreement on {len(films)} new films: {agreement:.3f}")
    assert agreement >= 0.7


@pytest.mark.parametrize(("args", "message"), [
    (["--encoder", "efficientnet-lite0"], "already runs on efficientnet-lite0"),
    (["--encoder", "efficientnet-lite2", "--method", "magic"], "unknown alignment method 'magic'"),
    (["--encoder", "no-such-encoder"], "unknown encoder 'no-such-encoder'"),
])
def test_bad_requests_are_one_line_errors(stitched: dict, tmp_path: Path, args: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "stitch", str(stitched["model"]), "--anchors", str(tmp_path), "--out",
                 str(tmp_path / "x.zsm"), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err


def test_a_folder_without_images_is_refused(stitched: dict, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["build", "stitch", str(stitched["model"]), "--encoder", "efficientnet-lite2", "--anchors",
                 str(tmp_path), "--out", str(tmp_path / "x.zsm")])
    assert code == 2 and "no images under" in capsys.readouterr().err
    assert not (tmp_path / "x.zsm").exists()


def test_the_check_says_when_it_was_not_made(stitched: dict, tmp_path: Path, isolated_dirs: Path) -> None:
    from zsmed.align.build import build_stitched
    from zsmed.progress import run_job

    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(stitched["anchors"].glob("*.jpeg"))[:12]:
        os.symlink(path.resolve(), few / path.name)
    _, report = run_job(build_stitched(stitched["model"], "efficientnet-lite2", [few], check_fraction=0.2))
    assert report["anchors"] == 12 and report["check"] == {
        "held_out": 0, "note": "too few anchors to hold 10 out for a check"}
    _, report = run_job(build_stitched(stitched["model"], "efficientnet-lite2", [few], check_fraction=0.0))
    assert report["check"]["note"] == "no check asked for (--check-fraction 0)"
