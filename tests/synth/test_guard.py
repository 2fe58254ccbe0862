"""The synthesis guard on real images: domain check, leave-one-out comparison, ProtoNet fallback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from zsmed.classifier import load_classifier

NOVEL = ("akiec", "df", "vasc")


def _support(root: Path, src: Path, classes: tuple[str, ...], k: int = 3, offset: int = 0) -> Path:
    for c in classes:
        (root / c).mkdir(parents=True)
        for f in sorted(p for p in (src / c).iterdir() if p.is_file())[offset : offset + k]:
            os.symlink(f, root / c / f.name)
    return root


def _encoder(name: str = "efficientnet-lite0"):  # type: ignore[no-untyped-def]
    from zsmed.encoders import shared_encoder

    torch.set_num_threads(2)
    return shared_encoder(name)


def _bank(folder: Path, cache, encoder: str = "efficientnet-lite0"):  # type: ignore[no-untyped-def]
    from zsmed.data.folders import load_class_folder
    from zsmed.fewshot.bank import build_bank
    from zsmed.progress import run_job

    return run_job(build_bank(load_class_folder(folder), _encoder(encoder), cache))


def _generator_encoders() -> list[str]:
    """The encoder each shipped generator was meta-trained on (dermoscopy: Lite0; chest X-ray: its
    tuned Lite0)."""
    from zsmed.synth.checkpoint import default_checkpoint_paths, read_checkpoint_config

    return [read_checkpoint_config(p)[0].encoder for p in default_checkpoint_paths()]


def test_decision_rule() -> None:
    from zsmed.synth.guard import decide

    inside = ("ham10000", 0.8, 0.5)
    assert decide(inside, 0.9, 0.8).use_generator
    assert not decide(inside, 0.8, 0.8).use_generator  # a tie gives ProtoNet: the generator must do better
    worse = decide(inside, 0.6, 0.8)
    assert not worse.use_generator and worse.fired == "loo" and "60.0 % < ProtoNet 80.0 %" in worse.reason
    outside = decide(("ham10000", 0.2, 0.5), 0.9, 0.1)
    assert not outside.use_generator and outside.fired == "domain" and "0.200 < 0.500" in outside.reason
    one_shot = decide(inside, None, None)
    assert one_shot.use_generator and "no leave-one-out" in one_shot.reason
    assert decide(None, None, None).use_generator  # a checkpoint without statistics: nothing to check
    # A generator whose checkpoint chose "ties to the generator" on its held-out classes keeps ties only.
    assert decide(inside, 0.8, 0.8, ties="generator").use_generator
    assert not decide(inside, 0.7, 0.8, ties="generator").use_generator


def test_tie_rule_is_read_from_the_checkpoint_and_kept_by_new_statistics(tmp_path: Path) -> None:
    from zsmed.synth.guard import DomainStats, read_tie_rule, write_domain_check

    ckpt = tmp_path / "g.json"
    ckpt.write_text(json.dumps({"config": {}, "domain_check": {"loo_ties": "generator"}}))
    assert read_tie_rule(ckpt) == "generator"
    stats = {"d": DomainStats("d", np.ones(4, dtype=np.float32) / 2, 0.5, 3, ("a", "b"))}
    write_domain_check(ckpt, stats)
    assert read_tie_rule(ckpt) == "generator" and "d" in json.loads(ckpt.read_text())["domain_check"]["domains"]
    ckpt.write_text(json.dumps({"domain_check": {"loo_ties": "coin flip"}}))
    assert read_tie_rule(ckpt) == "protonet"  # unknown -> the safe default
    assert read_tie_rule(tmp_path / "missing.json") == "protonet"


def test_shipped_domain_statistics_separate_dermoscopy_from_chest_xrays(tmp_path: Path, shared_data: Path,
                                                                        feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.synth.checkpoint import default_checkpoint_path
    from zsmed.synth.guard import domain_verdict, read_domain_check

    stats = read_domain_check(default_checkpoint_path())
    assert "ham10000" in stats and stats["ham10000"].centroid.shape == (1280,)
    novel = _bank(shared_data / "ham10000_fs" / "novel_dev", feature_cache)
    cxr = _bank(_support(tmp_path / "cxr", shared_data / "cxr_kermany", ("NORMAL", "BACTERIA"), k=20), feature_cache)
    # Every novel (never meta-trained) lesion class, image by image, passes; no chest X-ray does.
    for c in NOVEL:
        pooled = novel.pooled[novel.indices_of(c)].numpy()
        scores = [domain_verdict(p[None], stats) for p in pooled]
        assert all(s is not None and s[1] >= s[2] for s in scores), c
    for p in cxr.pooled.numpy():
        verdict = domain_verdict(p[None], stats)
        assert verdict is not None and verdict[1] < verdict[2]


def test_fit_domain_stats_threshold_from_held_out_classes(shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.synth.guard import domain_cosines, fit_domain_stats

    bank = _bank(shared_data / "ham10000_fs" / "novel_dev", feature_cache)
    stats = fit_domain_stats(bank.pooled.numpy(), bank.labels, {c: "derm" for c in NOVEL}, quantile=0.0, margin=0.0)
    s = stats["derm"]
    # quantile 0, margin 0: the threshold is the lowest score of any class against the other classes' centroid,
    # so every class scores at or above it against those centroids, and one class's minimum touches it.
    mins = []
    for c in NOVEL:
        others = [x for x in bank.labels if x != c]
        idx = [i for i, x in enumerate(bank.labels) if x != c]
        assert others
        ref = bank.pooled[idx].numpy()
        ref = (ref / np.linalg.norm(ref, axis=1, keepdims=True)).mean(0)
        mins.append(domain_cosines(bank.pooled[bank.indices_of(c)].numpy(), ref).min())
    assert s.threshold == pytest.approx(min(mins), abs=1e-5)
    assert s.n_images == len(bank.items) and s.classes == NOVEL


def test_chest_xray_support_falls_back_to_protonet(tmp_path: Path, shared_data: Path, feature_cache, capsys) -> None:  # type: ignore[no-untyped-def]
    """The dermoscopy generator, asked for explicitly: a chest X-ray support set gets ProtoNet, and
    the card and the CLI say so."""
    from zsmed.cli.main import main
    from zsmed.fewshot.bank import FeatureBank
    from zsmed.fewshot.baselines import ProtoNet
    from zsmed.fewshot.sampler import Episode
    from zsmed.synth.checkpoint import default_checkpoint_path
    from zsmed.synth.synthesize import encode_support, synthesize

    derm = default_checkpoint_path()
    support = _support(tmp_path / "s", shared_data / "cxr_kermany", ("NORMAL", "BACTERIA"), k=4)
    clf = synthesize(support, cache=feature_cache, checkpoint=derm)
    guard = clf.card.extra["guard"]
    assert clf.card.method == "protonet-cosine"
    assert guard["classifier"] == "protonet" and guard["fired"] == "domain" and not clf.card.extra["generator"]["used"]
    assert "outside the generator's meta-training data" in guard["reason"]
    # Its predictions are ProtoNet's on the frozen features.
    qroot = tmp_path / "q"
    for c in ("BACTERIA", "NORMAL"):
        (qroot / c).mkdir(parents=True)
        last = sorted((shared_data / "cxr_kermany" / c).iterdir())[-1]
        os.symlink(last, qroot / c / last.name)
    queries = [next((qroot / c).iterdir()) for c in ("BACTERIA", "NORMAL")]
    probs = clf.predict_files(queries)
    sbank = encode_support(support, _encoder(), feature_cache).bank
    both = FeatureBank.concat([sbank, _bank(qroot, feature_cache)])
    rows = np.stack([sbank.indices_of(c) for c in clf.class_names])
    q = np.arange(len(sbank.items), len(both.items))
    expected = ProtoNet(both).predict(Episode(tuple(clf.class_names), rows, q, np.zeros(len(q), dtype=int)))
    assert np.allclose(probs, expected, atol=2e-3)
    # The CLI says which classifier it built and why.
    out = tmp_path / "m.zsm"
    assert main(["build", "fewshot", "--support", str(support), "--out", str(out), "--checkpoint", str(derm)]) == 0
    text = capsys.readouterr().out
    assert "guard: ProtoNet (the generator is not used)" in text and "outside" in text
    again = load_classifier(out)
    assert again.card.extra["guard"]["classifier"] == "protonet"
    # --no-guard keeps the generator and says so.
    assert main(["build", "fewshot", "--support", str(support), "--out", str(tmp_path / "n.zsm"), "--no-guard",
                 "--checkpoint", str(derm)]) == 0
    text = capsys.readouterr().out
    assert "guard off" in text and load_classifier(tmp_path / "n.zsm").card.method.startswith("sgps")


def test_dermoscopy_support_runs_the_leave_one_out_comparison(tmp_path: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.synth.synthesize import synthesize

    support = _support(tmp_path / "s", shared_data / "ham10000_fs" / "novel_dev", NOVEL, k=3)
    clf = synthesize(support, cache=feature_cache)
    guard = clf.card.extra["guard"]
    assert guard["domain"] == "ham10000" and guard["domain_score"] >= guard["domain_threshold"]
    assert guard["loo_generator"] is not None and guard["loo_protonet"] is not None
    # Whatever the estimates, the classifier built is the one the rule picks.
    if guard["loo_generator"] <= guard["loo_protonet"]:
        # Inside its domain the dermoscopy generator falls back to ProtoNet on its fine-tuned stage.
        assert clf.card.method == "protonet-finetuned-stage" and guard["fired"] == "loo"
    else:
        assert clf.card.method.startswith("sgps") and guard["fired"] == ""
    # One image per class: nothing to leave out, the domain check alone decides.
    one = synthesize(_support(tmp_path / "o", shared_data / "ham10000_fs" / "novel_dev", NOVEL, k=1),
                     cache=feature_cache)
    assert one.card.extra["guard"]["loo_generator"] is None and one.card.method.startswith("sgps")


def test_guarded_method_in_episodes(shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    """``sgps-guarded``: each episode's output is SGPS's or ProtoNet's, as the checks say, and the
    firing counts add up; on chest X-rays the dermoscopy generator always falls back."""
    from zsmed.encoders import create_text_encoder
    from zsmed.fewshot.baselines import ProtoNet
    from zsmed.fewshot.evaluate import run_method
    from zsmed.fewshot.sampler import EpisodeSampler
    from zsmed.progress import run_job
    from zsmed.synth.checkpoint import default_checkpoint_path, load_generator
    from zsmed.synth.data import description_embeddings
    from zsmed.synth.guard import read_domain_check
    from zsmed.synth.synthesize import GuardedSGPSMethod, SGPSMethod

    encoder = _encoder()
    stats = read_domain_check(default_checkpoint_path())
    bank = _bank(shared_data / "ham10000_fs" / "novel_dev", feature_cache)
    text = description_embeddings(bank.classes, create_text_encoder())
    generator = load_generator(encoder=encoder)
    guarded = GuardedSGPSMethod("sgps-guarded", generator, bank, text, stats)
    plain, proto = SGPSMethod("sgps", generator, bank, text), ProtoNet(bank)
    episodes = EpisodeSampler(bank.labels, [i.group for i in bank.items], ways=2, shots=3, queries=5,
                              seed=7).episodes(6)
    outs = guarded.predict_many(episodes)
    stats_run = guarded.take_stats()
    assert stats_run["episodes"] == 6 and stats_run["fired_domain"] == 0
    fell_back = 0
    for ep, out in zip(episodes, outs, strict=True):
        is_sgps = np.allclose(out, plain.predict(ep), atol=1e-5)
        is_proto = np.allclose(out, proto.predict(ep), atol=1e-6)
        assert is_sgps or is_proto
        fell_back += int(is_proto and not is_sgps)
    assert fell_back <= stats_run["fired_loo"]

    from zsmed.data.folders import load_class_folder
    from zsmed.fewshot.bank import build_bank

    folder = load_class_folder(shared_data / "cxr_kermany", ["NORMAL", "BACTERIA"])
    folder.items = folder.items[:30] + folder.items[-30:]
    xbank = run_job(build_bank(folder, encoder, feature_cache))
    xguarded = GuardedSGPSMethod("sgps-guarded", generator, xbank, {}, stats)
    xeps = EpisodeSampler(xbank.labels, [i.group for i in xbank.items], ways=2, shots=1, queries=5,
                          seed=3).episodes(5)
    result = run_job(run_method(xguarded, xeps, 1))
    assert result.extra["fired_domain"] == 5 and result.extra["fired_rate"] == 1.0
    xproto = ProtoNet(xbank)
    assert result.accuracy == pytest.approx(np.mean([(xproto.predict(e).argmax(1) == e.query_labels).mean()
                                                     for e in xeps]))


def test_eval_cli_reports_the_guard(tmp_path: Path, shared_data: Path, feature_cache, capsys) -> None:  # type: ignore[no-untyped-def]
    from zsmed.cli.main import main

    out = tmp_path / "r.json"
    assert main(["eval", "fewshot", str(shared_data / "ham10000_fs" / "novel_dev"), "--shots", "2", "--episodes", "4",
                 "--queries", "5", "--methods", "sgps-guarded,protonet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "guard fired in" in text
    # Without --checkpoint the shipped generators run as build uses them: routed per episode.
    assert "generators: sgps_efficientnet-lite0 4, sgps-cxr_efficientnet-lite0 0" in text
    payload = json.loads(out.read_text())
    guarded = next(r for r in payload["results"] if r["method"] == "sgps-guarded")
    assert guarded["extra"]["episodes"] == 4 and 0.0 <= guarded["extra"]["fired_rate"] <= 1.0


def test_shipped_data_lists_hold_no_novel_image(shared_data: Path) -> None:
    """Every shipped generator's data list, checked by SHA-256 against the benchmark's novel images
    (HAM10000 novel_dev, Derm7pt dermatofibroma / vascular lesion)."""
    import csv

    from zsmed.features import file_sha256
    from zsmed.resources import resources_dir
    from zsmed.synth.data import NOVEL_LABELS

    novel = {file_sha256(p) for p in (shared_data / "ham10000_fs" / "novel_dev").rglob("*.jpg")}
    with (shared_data / "derm7pt" / "metadata.csv").open(newline="") as handle:
        novel |= {file_sha256(shared_data / "derm7pt" / r["file"]) for r in csv.DictReader(handle)
                  if r["diagnosis"] in ("dermatofibroma", "vascular lesion")}
    assert len(novel) > 150
    lists = sorted((resources_dir() / "checkpoints").glob("*.data_list.csv"))
    assert any("multidomain" in p.name for p in lists) and any("fallback" in p.name for p in lists)
    for path in lists:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows and not {r["sha256"] for r in rows} & novel, path.name
        assert not {r["label"].lower() for r in rows} & NOVEL_LABELS, path.name


def test_multidomain_checkpoint_knows_chest_xrays(tmp_path: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.resources import resources_dir
    from zsmed.synth.synthesize import synthesize

    ckpt = resources_dir() / "checkpoints" / "sgps-multidomain_efficientnet-lite0.safetensors"
    support = _support(tmp_path / "s", shared_data / "cxr_kermany", ("NORMAL", "BACTERIA"), k=1)
    guard = synthesize(support, checkpoint=ckpt, cache=feature_cache).card.extra["guard"]
    assert guard["domain"] == "cxr" and guard["fired"] == "" and guard["classifier"] == "sgps"
    derm = _support(tmp_path / "d", shared_data / "ham10000_fs" / "novel_dev", NOVEL, k=1)
    assert synthesize(derm, checkpoint=ckpt, cache=feature_cache).card.extra["guard"]["domain"] in (
        "ham10000", "derm7pt")


def test_eval_cli_relabels_by_a_metadata_column(tmp_path: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.cli.main import main

    out = tmp_path / "d.json"
    assert main(["eval", "fewshot", str(shared_data / "derm7pt"), "--label-column", "diagnosis", "--min-images", "30",
                 "--exclude-classes", "clark nevus", "--shots", "1", "--episodes", "3", "--queries", "3",
                 "--methods", "protonet", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    counts = payload["counts"]
    assert "clark nevus" not in counts and min(counts.values()) >= 30 and len(counts) >= 3
    assert "melanoma (less than 0.76 mm)" in counts and "NEV" not in counts


def test_route_takes_the_generator_whose_domain_the_support_is_most_inside() -> None:
    from zsmed.synth.guard import DomainStats, route

    def stats(axis: int, threshold: float) -> dict[str, DomainStats]:
        centroid = np.zeros(8, dtype=np.float32)
        centroid[axis] = 1.0
        return {f"d{axis}": DomainStats(f"d{axis}", centroid, threshold, 10, ("a", "b"))}

    near_1 = np.array([[0.1, 0.9, 0, 0, 0, 0, 0, 0], [0.2, 0.8, 0.1, 0, 0, 0, 0, 0]], dtype=np.float32)
    chosen, margins = route(near_1, [stats(0, 0.5), stats(1, 0.5)])
    assert chosen == 1 and margins[0] is not None and margins[1] is not None and margins[1] > 0 > margins[0]
    # The margin, not the raw score, decides: a strict threshold can lose to a lenient one.
    assert route(near_1, [stats(1, 0.99), stats(0, -0.5)])[0] == 1
    assert route(near_1, [{}, {}]) == (0, [None, None])  # no statistics: the default generator
    assert route(near_1, [{}, stats(0, 0.5)])[0] == 1
    assert route(near_1, [stats(1, 0.5), stats(1, 0.5)])[0] == 0  # a tie: the first (default)


def test_shipped_generators_route_dermoscopy_and_chest_xrays(tmp_path: Path, shared_data: Path,
                                                            feature_cache) -> None:  # type: ignore[no-untyped-def]
    """Each shipped generator takes its own domain's support sets, checked on real images of classes
    neither was meta-trained on (HAM10000 novel lesions; chest X-rays of the reserved dev patients
    are not needed: the route is decided on the support set alone)."""
    from zsmed.synth.checkpoint import DEFAULT_CHECKPOINTS, default_checkpoint_paths
    from zsmed.synth.guard import read_domain_check, route
    from zsmed.synth.synthesize import synthesize

    paths = default_checkpoint_paths()
    assert [p.stem for p in paths] == list(DEFAULT_CHECKPOINTS)
    stats = [read_domain_check(p) for p in paths]
    assert all(stats)
    encoders = _generator_encoders()
    assert encoders == ["efficientnet-lite0", "efficientnet-lite0-cxr"]
    # Each candidate's margin is measured in its own generator's feature space.
    novel = [_bank(shared_data / "ham10000_fs" / "novel_dev", feature_cache, e) for e in encoders]
    for c in NOVEL:
        assert route([b.pooled[b.indices_of(c)].numpy()[:5] for b in novel], stats)[0] == 0, c
    support = _support(tmp_path / "s", shared_data / "cxr_kermany", ("NORMAL", "VIRUS"), k=3, offset=40)
    assert route([_bank(support, feature_cache, e).pooled.numpy() for e in encoders], stats)[0] == 1
    clf = synthesize(support, cache=feature_cache)
    routing = clf.card.extra["generator"]["routing"]
    assert routing["chosen"] == DEFAULT_CHECKPOINTS[1] and routing["candidates"] == list(DEFAULT_CHECKPOINTS)
    assert routing["margins"][1] > routing["margins"][0]
    # The chest X-ray generator's own guard then ran: its domain check passed.
    assert clf.card.extra["guard"]["fired"] != "domain"
    assert clf.card.extra["generator"]["checkpoint"] == f"{DEFAULT_CHECKPOINTS[1]}.safetensors"


def test_routed_method_gives_each_episode_its_generators_output(shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    from zsmed.data.folders import load_class_folder
    from zsmed.fewshot.bank import FeatureBank, build_bank
    from zsmed.fewshot.sampler import EpisodeSampler
    from zsmed.progress import run_job
    from zsmed.synth.checkpoint import default_checkpoint_paths, load_generator
    from zsmed.synth.guard import read_domain_check
    from zsmed.synth.synthesize import RoutedMethod, SGPSMethod

    folder = load_class_folder(shared_data / "cxr_kermany", ["NORMAL", "VIRUS"])
    folder.items = folder.items[:20] + folder.items[-20:]
    paths = default_checkpoint_paths()
    # The same images on each generator's own encoder (as ``zsmed eval fewshot`` builds them).
    banks = [FeatureBank.concat([_bank(shared_data / "ham10000_fs" / "novel_dev", feature_cache, e),
                                 run_job(build_bank(folder, _encoder(e), feature_cache))])
             for e in _generator_encoders()]
    bank = banks[0]
    methods = [SGPSMethod("sgps", load_generator(p, encoder=_encoder(e)), b, {})
               for p, e, b in zip(paths, _generator_encoders(), banks, strict=True)]
    routed = RoutedMethod("sgps", methods, [read_domain_check(p) for p in paths], [p.stem for p in paths],
                          [b.pooled.numpy() for b in banks])
    groups = [i.group for i in bank.items]
    derm = EpisodeSampler(bank.labels, groups, ways=2, shots=2, queries=3, seed=1, classes=["akiec", "df"]).episodes(3)
    chest = EpisodeSampler(bank.labels, groups, ways=2, shots=2, queries=3, seed=2,
                           classes=["NORMAL", "VIRUS"]).episodes(3)
    episodes = [derm[0], chest[0], derm[1], chest[1], chest[2], derm[2]]
    outs = routed.predict_many(episodes)
    for ep, out in zip(episodes, outs, strict=True):
        own = methods[1 if "NORMAL" in ep.classes else 0]
        assert np.allclose(out, own.predict(ep), atol=1e-6)
    assert routed.take_stats()["routed"] == {paths[0].stem: 3, paths[1].stem: 3}
    assert routed.take_stats()["routed"] == {paths[0].stem: 0, paths[1].stem: 0}  # taken: counts start again


def test_eval_on_a_checkpoints_validation_images_only(tmp_path: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    """``--only-validation-of``: the images a generator was validated on (its held-out class and
    patients), how the chest X-ray generator was chosen without touching the dev patients."""
    import csv

    from zsmed.cli.main import main
    from zsmed.resources import resources_dir
    from zsmed.synth.data import reserved_group

    data_list = resources_dir() / "checkpoints" / "sgps-cxr_efficientnet-lite0.data_list.csv"
    with data_list.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = {c: sum(1 for r in rows if r["split"] == "val" and r["label"] == c) for c in ("NORMAL", "VIRUS")}
    assert expected["VIRUS"] > 0 and expected["NORMAL"] > 0
    assert not any(r["label"] == "VIRUS" and r["split"] == "train" for r in rows)  # VIRUS held out whole
    with (shared_data / "cxr_kermany" / "metadata.csv").open(newline="") as handle:
        reserved = {r["file"] for r in csv.DictReader(handle) if reserved_group(r["patient_id"], 0.4)}
    assert reserved and not {r["file"].split("/", 1)[1] for r in rows} & reserved  # no dev patient listed
    out = tmp_path / "v.json"
    assert main(["eval", "fewshot", str(shared_data / "cxr_kermany"), "--classes", "NORMAL", "VIRUS",
                 "--only-validation-of", str(data_list), "--episodes", "2", "--queries", "3",
                 "--methods", "protonet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["counts"] == expected


def test_shipped_chest_xray_generator_beats_protonet_on_its_validation_patients(tmp_path: Path, shared_data: Path,
                                                                                feature_cache) -> None:  # type: ignore[no-untyped-def]
    """A pin on data the generator was chosen on but never trained on (VIRUS held out whole, NORMAL of
    held-out patients; never the dev patients): the routed product beats ProtoNet at 1 and 5 shots.
    Fails if routing, the learned last stage or its export into the head break."""
    from zsmed.cli.main import main
    from zsmed.resources import resources_dir

    data_list = resources_dir() / "checkpoints" / "sgps-cxr_efficientnet-lite0.data_list.csv"
    out = tmp_path / "pin.json"
    assert main(["eval", "fewshot", str(shared_data / "cxr_kermany"), "--classes", "NORMAL", "VIRUS",
                 "--only-validation-of", str(data_list), "--episodes", "100", "--queries", "10",
                 "--methods", "sgps-guarded,protonet", "--json", str(out)]) == 0
    results = {(r["method"], r["shots"]): r for r in json.loads(out.read_text())["results"]}
    # Against ProtoNet on frozen Lite0, measured when the generator shipped (fifth round, same
    # episodes): 90.1 vs 70.0 % at 1-shot, 93.7 vs 85.6 % at 5-shot.
    for k, margin in ((1, 0.10), (5, 0.04)):
        guarded, proto = results[("sgps-guarded", k)], results[("protonet", k)]
        assert guarded["extra"]["routed"] == {"sgps_efficientnet-lite0": 0, "sgps-cxr_efficientnet-lite0": 100}
        assert guarded["accuracy"] >= proto["accuracy"] + margin, (k, guarded["accuracy"], proto["accuracy"])
    # And at 1-shot against ProtoNet on its own tuned encoder (the generator's part of the gain):
    # 90.1 vs 85.8 % when it shipped.
    tuned = tmp_path / "tuned.json"
    assert main(["eval", "fewshot", str(shared_data / "cxr_kermany"), "--classes", "NORMAL", "VIRUS",
                 "--only-validation-of", str(data_list), "--episodes", "100", "--queries", "10", "--shots", "1",
                 "--encoder", "efficientnet-lite0-cxr", "--methods", "protonet", "--json", str(tuned)]) == 0
    proto_tuned = json.loads(tuned.read_text())["results"][0]["accuracy"]
    assert results[("sgps-guarded", 1)]["accuracy"] >= proto_tuned + 0.015, proto_tuned


def test_eval_encoder_option_runs_baselines_and_generators_keep_their_own(tmp_path: Path, shared_data: Path,
                                                                          feature_cache) -> None:  # type: ignore[no-untyped-def]
    """``--encoder`` names the baselines' encoder; each generator runs on the encoder it was
    meta-trained on (as ``build`` does), so a Lite0 generator sits beside Lite2 baselines."""
    from zsmed.cli.main import main

    folder = _support(tmp_path / "s", shared_data / "ham10000_fs" / "novel_dev", ("akiec", "df"), k=4)
    out = tmp_path / "e.json"
    assert main(["eval", "fewshot", str(folder), "--encoder", "efficientnet-lite2", "--shots", "1", "--episodes", "2",
                 "--queries", "2", "--methods", "protonet", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["encoder"] == "efficientnet-lite2"
    assert main(["eval", "fewshot", str(folder), "--encoder", "efficientnet-lite2", "--shots", "1", "--episodes", "2",
                 "--queries", "2", "--methods", "sgps,protonet", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["encoder"] == "efficientnet-lite2"
    # Both shipped generators, each on its own encoder (neither is Lite2).
    assert sorted(payload["generator_encoders"].values()) == ["efficientnet-lite0", "efficientnet-lite0-cxr"]
    assert {r["method"] for r in payload["results"]} == {"sgps", "protonet"}


def test_route_measures_each_candidate_in_its_own_feature_space() -> None:
    from zsmed.synth.guard import DomainStats, route

    axis = np.eye(4, dtype=np.float32)
    near_first, near_second = np.tile(axis[0], (3, 1)), np.tile(axis[1], (3, 1))
    stats = [{"a": DomainStats("a", axis[0], 0.5, 3, ("x",))}, {"b": DomainStats("b", axis[1], 0.5, 3, ("y",))}]
    # One array for all: the features near the first centroid go to the first generator.
    assert route(near_first, stats)[0] == 0
    # One array per candidate: the second generator's own features sit on its centroid.
    chosen, margins = route([np.tile(axis[2], (3, 1)), near_second], stats)
    assert chosen == 1 and margins[0] is not None and margins[1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="one pooled array per candidate"):
        route([near_first], stats)


def test_shipped_descriptions_count(tmp_path: Path, shared_data: Path, feature_cache) -> None:  # type: ignore[no-untyped-def]
    """A pin of the dermoscopy generator's text prior on the HAM10000 novel classes (their
    descriptions were never fitted on): descriptions alone beat chance, and with one image per class
    images + descriptions beat images alone. Measured when it shipped (same episodes): SGPS 75.0 %,
    SGPS-I 73.8 %, SGPS-T 62.9 %."""
    from zsmed.cli.main import main
    from zsmed.synth.checkpoint import default_checkpoint_path, read_checkpoint_config

    config, info = read_checkpoint_config(default_checkpoint_path())
    assert config.text_prior_classes == 16 and not set(info["text_prior"]["classes"]) & set(NOVEL)
    out = tmp_path / "t.json"
    assert main(["eval", "fewshot", str(shared_data / "ham10000_fs" / "novel_dev"), "--shots", "1", "--episodes", "100",
                 "--queries", "10", "--methods", "sgps,sgps-i,sgps-t", "--json", str(out)]) == 0
    acc = {r["method"]: r["accuracy"] for r in json.loads(out.read_text())["results"]}
    assert acc["sgps-t"] >= 0.58
    assert acc["sgps"] >= acc["sgps-i"] + 0.005


def test_synthesize_routes_between_generators_on_different_encoders(tmp_path: Path, shared_data: Path,
                                                                   feature_cache, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A candidate generator meta-trained on another encoder is measured, and run, on that encoder:
    the support set is encoded once per encoder, the route compares each candidate's margin in its
    own feature space, and the classifier carries the chosen generator's encoder."""
    from zsmed.data.folders import load_class_folder
    from zsmed.encoders import create_image_encoder
    from zsmed.fewshot.bank import build_bank, lite_backbone
    from zsmed.progress import run_job
    from zsmed.synth import checkpoint as checkpoint_module
    from zsmed.synth.checkpoint import new_generator, save_generator
    from zsmed.synth.config import SGPSConfig
    from zsmed.synth.guard import fit_domain_stats, write_domain_check
    from zsmed.synth.synthesize import synthesize

    lite2 = create_image_encoder("efficientnet-lite2")
    backbone = lite_backbone(lite2)
    config = SGPSConfig(encoder="efficientnet-lite2", encoder_sha256=lite2.spec.weights_sha256,
                        trunk_channels=int(backbone.head_in), d_model=64, n_layers=1, ff_dim=64)
    chest_ckpt = save_generator(new_generator(config, backbone), tmp_path / "ckpt" / "sgps-chest_efficientnet-lite2")
    # Its domain statistics come from Lite2 features of chest X-rays (other images than the support's).
    fit_on = _support(tmp_path / "fit", shared_data / "cxr_kermany", ("NORMAL", "BACTERIA", "VIRUS"), k=6)
    fitted = run_job(build_bank(load_class_folder(fit_on), lite2, feature_cache))
    write_domain_check(chest_ckpt, fit_domain_stats(fitted.pooled.numpy(), fitted.labels,
                                                    dict.fromkeys(fitted.classes, "cxr")))
    derm_ckpt = checkpoint_module.default_checkpoint_paths()[0]
    monkeypatch.setattr(checkpoint_module, "default_checkpoint_paths", lambda: [derm_ckpt, chest_ckpt])

    chest = _support(tmp_path / "chest", shared_data / "cxr_kermany", ("NORMAL", "VIRUS"), k=3, offset=40)
    clf = synthesize(chest, cache=feature_cache, loo=False)
    routing = clf.card.extra["generator"]["routing"]
    assert routing["encoders"] == ["efficientnet-lite0", "efficientnet-lite2"]
    assert routing["chosen"] == chest_ckpt.stem and routing["margins"][1] > routing["margins"][0]
    assert clf.card.encoder.name == "efficientnet-lite2"

    derm = _support(tmp_path / "derm", shared_data / "ham10000_fs" / "novel_dev", ("akiec", "df"), k=3)
    clf = synthesize(derm, cache=feature_cache, loo=False)
    assert clf.card.extra["generator"]["routing"]["chosen"] == derm_ckpt.stem
    assert clf.card.encoder.name == "efficientnet-lite0"
