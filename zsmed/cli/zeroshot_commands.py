"""``zsmed eval zeroshot``, ``zsmed build zeroshot`` and ``zsmed eval stitch``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

# zsmed.zeroshot.evaluate.ALL_METHODS, written out: importing it here would load torch for every
# command, `zsmed predict` included (a test keeps the two equal)
ZEROSHOT_METHODS = ("fsigenz", "fsigenz_no_msas", "fsigenz_with_msas", "fsigenz_no_dpsr_reg", "fsigenz_no_dpsr",
                    "prototypes", "devise", "devise_image_attributes", "eszsl")

# zsmed.zeroshot.classdefs' AUTO_SEMANTICS and SEMANTIC_MODES, written out for the same reason (tested)
SEMANTICS_CHOICES = ("auto", "text", "attributes", "both")
SEMANTICS_HELP = ("what defines a class: its description (text), its attributes, or both; auto (default): all "
                  "the class file gives every class")


def _write_json(report: dict[str, Any], out: str | None) -> None:
    text = json.dumps(report, indent=2)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{value}' is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _say_semantics(report: dict[str, Any], requested: str) -> None:
    if requested == "auto":
        print(f"semantics: {report['semantics']} (all the class file gives every class)", file=sys.stderr)


def _eval_zeroshot(args: argparse.Namespace) -> int:
    import torch

    from zsmed.progress import run_with_bar
    from zsmed.zeroshot.evaluate import evaluate_zeroshot, evaluate_zeroshot_repeated

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    options: dict[str, Any] = {"semantics": args.semantics, "seen_test_fraction": args.seen_test_fraction,
                               "encoder": args.encoder, "methods": _csv(args.methods) if args.methods else None}
    if args.repeats != 1:
        repeated = run_with_bar(
            evaluate_zeroshot_repeated(args.data_dirs, args.classes, _csv(args.unseen), repeats=args.repeats,
                                       seed=args.seed, **options),
            "zero-shot",
        )
        _write_json(repeated, args.json)
        _say_semantics(repeated["runs"][0], args.semantics)
        print(f"calibrated, mean ± sd over {args.repeats} seen-class splits (seeds {args.seed}.."
              f"{args.seed + args.repeats - 1}):", file=sys.stderr)
        for name, entry in repeated["summary"].items():
            if "skipped" in entry:
                print(f"{name:22s} skipped: {entry['skipped']}", file=sys.stderr)
                continue
            figures = "  ".join(f"{label} {entry[key + '_mean'] * 100:5.1f} ± {entry[key + '_sd'] * 100:4.1f}"
                                for key, label in (("H", "H"), ("seen_acc", "seen"), ("unseen_acc", "unseen"),
                                                   ("zsl_acc", "ZSL")) if key + "_mean" in entry)
            print(f"{name:22s} {figures}", file=sys.stderr)
        return 0
    report = run_with_bar(
        evaluate_zeroshot(args.data_dirs, args.classes, _csv(args.unseen), seed=args.seed, **options),
        "zero-shot",
    )
    _write_json(report, args.json)
    _say_semantics(report, args.semantics)
    for name, result in report["methods"].items():
        if "skipped" in result:
            print(f"{name:22s} skipped: {result['skipped']}", file=sys.stderr)
            continue
        cal, uncal = result["calibrated"], result["uncalibrated"]
        print(f"{name:22s} H={cal['H'] * 100:5.1f} (seen {cal['seen_acc'] * 100:5.1f}, unseen "
              f"{cal['unseen_acc'] * 100:5.1f}, ZSL {cal['zsl_acc'] * 100:5.1f})  "
              f"uncalibrated H={uncal['H'] * 100:5.1f}", file=sys.stderr)
    return 0


def _build_zeroshot(args: argparse.Namespace) -> int:
    from zsmed.classifier import save_classifier
    from zsmed.progress import run_with_bar
    from zsmed.zeroshot.build import build_zeroshot

    classifier = run_with_bar(
        build_zeroshot(args.seen, args.classes, _csv(args.unseen) if args.unseen else None,
                       semantics=args.semantics, encoder=args.encoder, seed=args.seed),
        "building",
    )
    path = save_classifier(classifier, args.out)
    print(f"wrote {path} ({', '.join(classifier.class_names)}; semantics: "
          f"{classifier.card.extra['semantics']})", file=sys.stderr)
    return 0


def _eval_stitch(args: argparse.Namespace) -> int:
    from zsmed.align.evaluate import evaluate_stitch
    from zsmed.progress import run_with_bar

    report = run_with_bar(
        evaluate_stitch(args.data_dir, args.src, args.tgt, anchors=args.anchors, methods=_csv(args.methods),
                        seed=args.seed, classes_file=args.classes,
                        unseen=_csv(args.unseen) if args.unseen else None),
        "stitching",
    )
    _write_json(report, args.json)
    for row in report["stitching"]:
        ratio = row.get("relative_accuracy")
        print(f"{row['method']:11s} anchors={row['anchors']:5d} "
              + (f"acc={row['accuracy'] * 100:5.1f} ({ratio * 100:5.1f}% of native) cos={row['mean_cosine']:.3f}"
                 if ratio is not None else row.get("error", "")), file=sys.stderr)
    return 0


def _build_stitch(args: argparse.Namespace) -> int:
    from zsmed.align.build import build_stitched
    from zsmed.classifier import save_classifier
    from zsmed.progress import run_with_bar

    stitched, report = run_with_bar(
        build_stitched(args.model, args.encoder, args.anchors, method=args.method, max_anchors=args.max_anchors,
                       check_fraction=args.check_fraction, seed=args.seed),
        "stitching",
    )
    path = save_classifier(stitched, args.out)
    check = report["check"]
    print(f"wrote {path}: runs on {report['target_encoder']} (built on {report['native_encoder']}), "
          f"{report['method']} map from {report['anchors']} unlabelled anchors", file=sys.stderr)
    if check.get("held_out"):
        print(f"check on {check['held_out']} held-out anchors: same top-1 class as the original on "
              f"{check['top1_agreement'] * 100:.1f} %, mean cosine {check['mean_cosine']:.3f}", file=sys.stderr)
    else:
        print(f"check: {check['note']}", file=sys.stderr)
    if report["unreadable_anchors"]:
        print(f"{report['unreadable_anchors']} anchor file(s) could not be read and were left out", file=sys.stderr)
    return 0


def register(groups: Any) -> None:
    ev = groups.group("eval").add_parser(
        "zeroshot", help="generalised zero-shot evaluation (FSIGenZ, ablations, baselines)")
    ev.add_argument("data_dirs", nargs="+", metavar="DATA_DIR", help="folders of class subfolders (pooled)")
    ev.add_argument("--classes", required=True, help="class-definition YAML (descriptions and/or attributes)")
    ev.add_argument("--unseen", required=True, help="comma-separated unseen classes (test images only)")
    ev.add_argument("--seen-test-fraction", type=float, default=0.2,
                    help="share of seen groups (lesions/patients) held out for testing")
    ev.add_argument("--semantics", choices=SEMANTICS_CHOICES, default="auto", help=SEMANTICS_HELP)
    ev.add_argument("--encoder", default="efficientnet-lite0")
    ev.add_argument("--methods", default="",
                    help=f"comma-separated subset of {', '.join(ZEROSHOT_METHODS)} (default: all); the "
                         "fsigenz_* ablations change one component of the setting FSIGenZ chose")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--repeats", type=_positive_int, default=1,
                    help="run this many seen-class splits (seeds SEED, SEED+1, ...) and report each method's "
                         "mean and spread (default 1: one split, the plain report)")
    ev.add_argument("--json", help="write the report here (default: stdout)")
    ev.set_defaults(handler=_eval_zeroshot)

    st = groups.group("eval").add_parser("stitch", help="classifier stitching across encoders by latent alignment")
    st.add_argument("data_dir", metavar="DATA_DIR")
    st.add_argument("--src", default="efficientnet-lite0", help="encoder the classifier is built on")
    st.add_argument("--tgt", default="efficientnet-lite2", help="encoder the stitched classifier runs on")
    st.add_argument("--anchors", type=int, nargs="+", default=[10, 50, 200, 1000])
    st.add_argument("--methods", default="procrustes,lstsq,affine,sgd")
    st.add_argument("--classes", help="class-definition YAML: also run zero-shot through text")
    st.add_argument("--unseen", help="comma-separated unseen classes for the text zero-shot demo")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--json", help="write the report here (default: stdout)")
    st.set_defaults(handler=_eval_stitch)

    bs = groups.group("build").add_parser(
        "stitch", help="move a classifier onto another encoder, anchored on unlabelled images")
    bs.add_argument("model", help="the classifier (.zsm) to move")
    bs.add_argument("--encoder", required=True, help="the encoder the stitched classifier will run on")
    bs.add_argument("--anchors", nargs="+", required=True, metavar="DIR",
                    help="folders or files of this site's images (no labels needed)")
    bs.add_argument("--method", default="affine", help="procrustes, lstsq, affine or sgd")
    bs.add_argument("--max-anchors", type=int, default=1000)
    bs.add_argument("--check-fraction", type=float, default=0.2,
                    help="share of anchors held out to check the map (top-1 agreement with the original)")
    bs.add_argument("--seed", type=int, default=0)
    bs.add_argument("--out", required=True, help="the stitched classifier (.zsm); export it like any other")
    bs.set_defaults(handler=_build_stitch)

    bd = groups.group("build").add_parser("zeroshot", help="build a zero-shot classifier (FSIGenZ)")
    bd.add_argument("--seen", nargs="+", required=True, metavar="DIR", help="folders of seen-class subfolders")
    bd.add_argument("--classes", required=True, help="class-definition YAML")
    bd.add_argument("--unseen", help="comma-separated unseen classes (default: every other class in the file)")
    bd.add_argument("--semantics", choices=SEMANTICS_CHOICES, default="auto", help=SEMANTICS_HELP)
    bd.add_argument("--encoder", default="efficientnet-lite0")
    bd.add_argument("--seed", type=int, default=0)
    bd.add_argument("--out", required=True, help="model file to write (.zsm)")
    bd.set_defaults(handler=_build_zeroshot)
