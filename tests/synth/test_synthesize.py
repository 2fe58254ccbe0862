from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from zsmed.classifier import load_classifier, save_classifier
from zsmed.errors import DatasetError

NOVEL = ("akiec", "df", "vasc")


def _support(root: Path, shared_data: Path, classes: tuple[str, ...] = NOVEL, k: int = 3, offset: int = 0) -> Path:
    src = shared_data / "ham10000_fs" / "novel_dev"
    for c in classes:
        (root / c).mkdir(parents=True)
        for f in sorted((src / c).iterdir())[offset : offset + k]:
            os.symlink(f, root / c / f.name)
    return root


@pytest.fixture()
def support_dir(tmp_path: Path, shared_data: Path) -> Path:
    return _support(tmp_path / "support", shared_data)


def test_synthesize_save_load_same_probabilities(support_dir: Path, tmp_path: Path, shared_data: Path,
                                                 feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.synth.synthesize import synthesize

    clf = synthesize(support_dir, cache=feature_cache)
    assert clf.class_names == list(NOVEL)
    assert not clf.training
    assert clf.card.support_counts == {c: 3 for c in NOVEL}
    assert 0.0 <= clf.card.metrics["loo_accuracy"] <= 1.0
    assert len(clf.card.ood["support_pooled_mean"]) == 1280
    queries = [sorted((shared_data / "ham10000_fs" / "novel_dev" / c).iterdir())[-1] for c in NOVEL]
    probs = clf.predict_files(queries)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    path = save_classifier(clf, tmp_path / "m.zsm")
    again = load_classifier(path)
    assert again.class_names == clf.class_names
    assert np.allclose(again.predict_files(queries), probs, atol=1e-6)


def test_pixel_path_matches_cached_path(support_dir: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    """The exported classifier (pixels in) gives what evaluation on cached maps gives."""
    from zsmed.encoders import create_text_encoder
    from zsmed.synth.checkpoint import load_generator
    from zsmed.synth.data import description_embeddings
    from zsmed.synth.synthesize import SGPSMethod, _episode_for, encode_support, synthesize

    clf = synthesize(support_dir, cache=feature_cache, loo=False)
    support = encode_support(support_dir, _encoder(), feature_cache)
    text = description_embeddings(list(NOVEL), create_text_encoder())
    method = SGPSMethod("sgps", load_generator(), support.bank, text)
    episode = _episode_for(support.bank, list(NOVEL))
    from zsmed.fewshot.sampler import Episode

    episode = Episode(episode.classes, episode.support, np.arange(len(support.bank.items)),
                      np.array([NOVEL.index(lab) for lab in support.bank.labels]))
    cached = method.predict(episode)
    pixels = clf.predict_files([it.path for it in support.bank.items])
    assert np.allclose(cached, pixels, atol=2e-2)


def _encoder():  # type: ignore[no-untyped-def]
    from zsmed.encoders import create_image_encoder

    return create_image_encoder()


def test_bad_inputs(tmp_path: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.synth.synthesize import synthesize

    # A class folder with no images.
    root = _support(tmp_path / "a", shared_data, ("akiec", "df"))
    (root / "vasc").mkdir()
    with pytest.raises(DatasetError, match="no images: vasc"):
        synthesize(root, cache=feature_cache)
    # Only one class.
    root = _support(tmp_path / "b", shared_data, ("akiec",))
    with pytest.raises(DatasetError, match="at least two classes"):
        synthesize(root, cache=feature_cache)
    # An undecodable image is skipped, counted on the card and named in the details (on this PC
    # only); a class without description falls back to images.
    root = _support(tmp_path / "c", shared_data, ("akiec", "df"))
    (root / "df" / "broken.png").write_bytes(b"not a png at all")
    os.rename(root / "df", root / "mystery_class")
    details: dict = {}
    clf = synthesize(root, cache=feature_cache, loo=False, details=details)
    warnings = " | ".join(clf.card.extra["warnings"])
    assert "1 support image(s) could not be read and were left out" in warnings and "broken.png" not in warnings
    assert [p.name for p, _ in details["skipped"]] == ["broken.png"]
    assert "no description for mystery_class" in warnings
    assert clf.card.support_counts == {"akiec": 3, "mystery_class": 3}
    # The same images filed under two classes (a copy into the wrong folder).
    root = _support(tmp_path / "e", shared_data, ("akiec", "df"))
    copied = sorted((root / "akiec").iterdir())[0]
    (root / "df" / "copied.jpg").write_bytes(copied.read_bytes())
    with pytest.raises(DatasetError, match=rf"same image is filed under two classes \(1 such image\(s\)\), e\.g\. "
                                           rf"akiec/{copied.name} and df/copied\.jpg"):
        synthesize(root, cache=feature_cache)
    # Two damaged copies cut to the same few bytes, in two classes: named as unreadable, not as one image
    # filed twice (they are no image at all).
    root = _support(tmp_path / "f", shared_data, ("akiec", "df"))
    for name in ("akiec", "df"):
        first = sorted((root / name).iterdir())[0]
        (root / name / f"cut_{first.name}").write_bytes(first.read_bytes()[:10])  # a JPEG's first bytes only
    details = {}
    clf = synthesize(root, cache=feature_cache, loo=False, details=details)
    assert sorted(p.name for p, _ in details["skipped"]) == sorted(
        f"cut_{sorted((root / n).iterdir())[0].name}" for n in ("akiec", "df"))
    assert clf.card.support_counts == {"akiec": 3, "df": 3}
    # A class whose only image is broken.
    root = _support(tmp_path / "d", shared_data, ("akiec",))
    (root / "df").mkdir()
    (root / "df" / "x.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(DatasetError, match=r"x\.png"):
        synthesize(root, cache=feature_cache)


def test_cli_build_writes_a_loadable_model(support_dir: Path, tmp_path: Path, capsys, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.cli.main import main

    out = tmp_path / "model.zsm"
    assert main(["build", "fewshot", "--support", str(support_dir), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "leave-one-out estimate" in text and "%" in text and "guard: " in text
    clf = load_classifier(out)
    # The guard picks the generator or ProtoNet (tests/synth/test_guard.py); the card says which.
    used = clf.card.extra["guard"]["classifier"]
    assert clf.class_names == list(NOVEL) and clf.card.method.startswith("sgps" if used == "sgps" else "protonet")


def test_shipped_checkpoint_beats_chance_on_novel_classes(shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.data.folders import load_class_folder
    from zsmed.encoders import create_text_encoder
    from zsmed.fewshot.bank import build_bank
    from zsmed.fewshot.evaluate import run_method
    from zsmed.fewshot.sampler import EpisodeSampler
    from zsmed.progress import run_job
    from zsmed.synth.checkpoint import load_generator
    from zsmed.synth.data import description_embeddings
    from zsmed.synth.synthesize import SGPSMethod

    torch.set_num_threads(2)
    encoder = _encoder()
    bank = run_job(build_bank(load_class_folder(shared_data / "ham10000_fs" / "novel_dev"), encoder, feature_cache))
    text = description_embeddings(bank.classes, create_text_encoder())
    method = SGPSMethod("sgps", load_generator(encoder=encoder), bank, text)
    episodes = EpisodeSampler(bank.labels, [i.group for i in bank.items], ways=2, shots=5, queries=15,
                              seed=123).episodes(30)
    result = run_job(run_method(method, episodes, 5))
    assert result.accuracy > 0.6


def test_text_embeddings_are_cached_and_skip_the_encoder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import numpy as np

    from zsmed.synth import text_cache

    monkeypatch.setenv("ZSMED_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[list[str]] = []

    class FakeEncoder:
        def encode(self, texts: list[str]) -> np.ndarray:
            calls.append(list(texts))
            return np.stack([np.full(4, len(t), dtype=np.float32) for t in texts])

    texts = {"a": "a brand-new description nobody ships", "b": "another one"}
    first = text_cache.embed_texts(texts, "fake-model", FakeEncoder)
    assert calls == [[texts["a"], texts["b"]]]
    second = text_cache.embed_texts(texts, "fake-model", FakeEncoder)
    assert calls == [[texts["a"], texts["b"]]]  # served from the user cache, encoder not built
    assert all(np.array_equal(first[k], second[k]) for k in texts)


def test_shipped_description_embeddings_cover_the_shipped_descriptions() -> None:
    import numpy as np

    from zsmed.descriptions import load_descriptions
    from zsmed.synth import text_cache

    path = text_cache.shipped_embeddings_path("all-MiniLM-L6-v2")
    with np.load(path) as table:
        keys = set(table.files)
    missing = [e.description[:40] for e in load_descriptions()
               if text_cache.text_key("all-MiniLM-L6-v2", e.description) not in keys]
    assert not missing, f"rebuild with python -m zsmed.synth.text_cache: {missing}"


def test_leave_one_out_estimate_does_not_depend_on_how_many_episodes_share_a_pass(
        support_dir: Path, feature_cache, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The estimate runs its episodes a few at a time (one pass over all N would hold N x N conv
    maps: 4 GB at 60 support images); chunking must not change it."""
    from zsmed.synth import synthesize as module

    estimates = []
    for per_pass in (1, 4, 1000):  # one at a time, uneven chunks (4 + 4 + 1), all in one pass
        monkeypatch.setattr(module, "LOO_EPISODES_PER_PASS", per_pass)
        estimates.append(module.synthesize(support_dir, cache=feature_cache).card.metrics["loo_accuracy"])
    assert estimates[0] == estimates[1] == estimates[2]
    assert 0.0 < estimates[0] < 1.0  # a real estimate over 9 images, neither degenerate end


def test_leave_one_out_holds_out_an_even_share_of_every_class_past_its_limit(
        support_dir: Path, feature_cache, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Each held-out image costs a synthesis over all others (time ~ N^2): past LOO_MAX_IMAGES the
    estimate holds out a proportional, evenly spread share of each class and says how many."""
    from zsmed.synth import synthesize as module

    monkeypatch.setattr(module, "LOO_MAX_IMAGES", 6)
    clf = module.synthesize(support_dir, cache=feature_cache)
    assert clf.card.metrics["loo_images"] == 6  # 2 of the 3 images of each of 3 classes
    assert 0.0 <= clf.card.metrics["loo_accuracy"] <= 1.0
    support = module.encode_support(support_dir, _encoder(), feature_cache)
    held = module.loo_held_out(support.bank, list(NOVEL), 6)
    labels = [support.bank.items[i].label for i in held]
    assert sorted(labels) == sorted([*NOVEL, *NOVEL]) and len(set(held)) == 6
    assert module.loo_held_out(support.bank, list(NOVEL), 100) == list(range(9))


def test_an_unreadable_support_image_is_named_here_and_only_counted_on_the_card(
        support_dir: Path, tmp_path: Path, capsys, feature_cache) -> None:  # type: ignore[no-untyped-def]
    """The card travels to other PCs inside the bundle, and file names can carry a patient's name:
    the build names the unreadable file on this PC, the card only counts it, and the model exports
    (the privacy check used to refuse a card naming it)."""
    from zsmed.cli.main import main

    (support_dir / "akiec" / "Doe_Jane_2024.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    out = tmp_path / "model.zsm"
    assert main(["build", "fewshot", "--support", str(support_dir), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"warning: skipped {support_dir / 'akiec' / 'Doe_Jane_2024.jpg'}: cannot decode the image" in err
    card = load_classifier(out).card
    assert card.extra["warnings"][0] == "1 support image(s) could not be read and were left out"
    assert "Doe_Jane" not in json.dumps(card.to_dict())
    assert main(["export", str(out), "--calibration", str(support_dir), "--out", str(tmp_path / "m.zsmb")]) == 0


def test_details_hold_each_support_images_leave_one_out_class(support_dir: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.synth.synthesize import synthesize

    details: dict = {}
    clf = synthesize(support_dir, cache=feature_cache, details=details)
    labels = dict(details["support"])
    assert sorted(labels.values()) == sorted([*NOVEL] * 3) and details["skipped"] == []
    assert set(details["loo"]) == set(labels)  # 9 images, all held out once
    right = sum(details["loo"][p] == labels[p] for p in labels)
    assert clf.card.metrics["loo_accuracy"] == pytest.approx(right / 9)
