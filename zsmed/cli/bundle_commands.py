"""``zsmed export``, ``predict``, ``check``, ``bundle info|verify|keygen`` and ``bench runtime``.

``predict``, ``check`` and ``bundle`` run on hospital PCs without torch: nothing here imports torch at module
level, and only the ``export`` and ``bench`` handlers import the torch-side code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from zsmed.cli.pacs_options import add_receive_arguments
from zsmed.errors import ZsmedError

BACKEND_CHOICES = ("auto", "onnxruntime", "openvino", "openvino-int8")


def _add_trust_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--require-signature", action="store_true",
                        help="refuse bundles not signed by a trusted key (site policy)")
    parser.add_argument("--trusted-key", action="append", default=[], metavar="PUB",
                        help="PEM public key of a trusted signer (repeatable); ZSMED_TRUSTED_KEYS also "
                             "lists them, separated by the path separator. With trusted keys, bundles must be "
                             "signed by one of them")
    parser.add_argument("--allow-unsigned", action="store_true",
                        help="for testing only: accept an unsigned bundle (or one signed by an unknown key) "
                             "although trusted keys are configured; never one whose signature fails")


def _trust(args: argparse.Namespace) -> tuple[bool, list[str]]:
    from zsmed.runtime.trust import REQUIRE_ENV, env_bool, env_trusted_keys

    keys = list(args.trusted_key) + env_trusted_keys()
    require = bool(args.require_signature) or env_bool(REQUIRE_ENV)  # 'TRUE', 'on', 'Yes' count; typos are errors
    return require, keys


def _allow_unsigned(args: argparse.Namespace) -> bool:
    allow = bool(getattr(args, "allow_unsigned", False))
    if allow:
        print("zsmed: warning: --allow-unsigned: unsigned bundles are accepted for this command (testing only)",
              file=sys.stderr)
    return allow


def register(groups: Any) -> None:
    export = groups.top.add_parser("export", help="export a classifier (.zsm) to a portable bundle (.zsmb)")
    export.add_argument("model", type=Path, help="model file (.zsm)")
    export.add_argument("--out", type=Path, required=True, help="bundle file to write (.zsmb)")
    export.add_argument("--calibration", type=Path, required=True, metavar="DIR",
                        help="the classifier's support images (class subfolders give labels): parity check, "
                             "OOD gate calibration and INT8 calibration; never copied into the bundle")
    export.add_argument("--int8", action="store_true", help="also add an INT8 OpenVINO model if it passes the checks")
    export.add_argument("--sign", type=Path, metavar="KEY", help="Ed25519 private key (PEM) to sign the bundle")
    export.add_argument("--site", default="", help="site name recorded in the model card")
    export.add_argument("--intended-use", default=None, help="intended-use statement for the model card")
    export.set_defaults(handler=_export)

    predict = groups.top.add_parser("predict", help="predict with a bundle on images, DICOM files, folders")
    predict.add_argument("bundle", type=Path)
    predict.add_argument("inputs", nargs="+", type=Path, metavar="INPUT")
    predict.add_argument("--json", action="store_true", help="one JSON object per line")
    predict.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    predict.add_argument("--batch-size", type=int, default=8,
                         help="images per inference call (memory grows ~30 MB per image; default 8)")
    predict.add_argument("--frames", choices=("all", "first"), default="all",
                         help="multi-frame DICOM images: predict every frame (default) or the first only")
    predict.add_argument("--series", action="store_true",
                         help="also give one result per DICOM series (SeriesInstanceUID) or folder")
    predict.add_argument("--threads", type=int, default=None, help="inference threads (default: usable CPUs)")
    predict.add_argument("--sr", type=Path, default=None, metavar="OUTDIR",
                         help="also write one DICOM Structured Report per predicted DICOM image (per frame of a "
                              "multi-frame image, referencing it) into OUTDIR, in the image's study, for the PACS")
    predict.add_argument("--secondary-capture", action="store_true",
                         help="with --sr: also a Secondary Capture image with the result burned into a banner")
    predict.add_argument("--log", nargs="?", const="", default=None, metavar="PATH",
                         help="record every result in the case log (no PATH: the site's case log; give PATH "
                              "as --log=PATH or after the inputs)")
    predict.add_argument("--keep-embeddings", action="store_true",
                         help="with --log: keep each image's embedding too (at most 2.5 KB an image), so that "
                              "zsmed log similar finds the reviewed cases most alike, as the app does")
    _add_trust_args(predict)
    predict.set_defaults(handler=_predict)

    serve = groups.top.add_parser(
        "serve", help="an AI node beside the PACS: classify what it sends, log, report, send the reports back",
        description=SERVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    serve.add_argument("bundle", type=Path)
    serve.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    serve.add_argument("--log", nargs="?", const="", default=None, metavar="PATH",
                       help="keep every result in the case log (no PATH: the site's)")
    serve.add_argument("--sr-out", type=Path, default=None, metavar="DIR",
                       help="where the reports go (default: the receive folder's 'results')")
    serve.add_argument("--secondary-capture", action="store_true",
                       help="also a Secondary Capture per result (the result burned into a banner)")
    serve.add_argument("--send-results", action="store_true", help="send the reports to the PACS")
    serve.add_argument("--commit", action="store_true",
                       help="with --send-results, ask the PACS to confirm it keeps the reports (storage commitment; "
                            "its answer comes to the port listened on)")
    _add_trust_args(serve)
    add_receive_arguments(serve)  # --ae is also who the reports come from, --tls-* also for sending them
    serve.add_argument("--pacs", default="", metavar="AE@HOST:PORT",
                       help="where the reports go with --send-results (default: the settings' PACS)")
    serve.add_argument("--timeout", type=float, default=15.0, metavar="S", help="seconds to wait for the PACS")
    serve.set_defaults(handler=_serve, calling_ae="")

    check = groups.top.add_parser(
        "check", help="check a bundle on this site's labelled images (a folder of class subfolders)",
        description="Run the model on labelled local images (one subfolder per class, named as the model's "
                    "classes) and compare: accuracy, per-class sensitivity and PPV with 95 % intervals, the "
                    "confusion matrix and the images it got wrong. Use cases the model was not built from.")
    check.add_argument("bundle", type=Path, help="model file (.zsmb)")
    check.add_argument("folder", type=Path, metavar="FOLDER", help="folder with one subfolder of images per class")
    check.add_argument("--json", type=Path, default=None, metavar="OUT",
                       help="also write the full report (every image, named) as JSON")
    check.add_argument("--html", type=Path, default=None, metavar="OUT",
                       help="also write the report as a page to print or file (names the image files, not paths)")
    check.add_argument("--site", default="", help="site name printed on the --html page")
    check.add_argument("--record", action="store_true",
                       help="keep the summary (figures only, no file names) beside the bundle, where the app's "
                            "model card shows it")
    check.add_argument("--per-image", action="store_true",
                       help="count every image file as a case (default: the images of a DICOM series are one "
                            "case, their answers combined as predict --series combines them)")
    check.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    check.add_argument("--threads", type=int, default=None, help="inference threads (default: usable CPUs)")
    _add_trust_args(check)
    check.set_defaults(handler=_check)

    bundle = groups.top.add_parser("bundle", help="inspect, verify or sign bundles")
    sub = bundle.add_subparsers(dest="bundle_command", metavar="WHAT", required=True)
    info = sub.add_parser("info", help="show a bundle's model card")
    info.add_argument("bundle", type=Path)
    info.add_argument("--json", action="store_true")
    info.set_defaults(handler=_info)
    verify = sub.add_parser("verify", help="verify checksums (and signature) and load the model")
    verify.add_argument("bundle", type=Path)
    verify.add_argument("--backend", choices=BACKEND_CHOICES[1:], default="onnxruntime")
    _add_trust_args(verify)
    verify.set_defaults(handler=_verify)
    keygen = sub.add_parser("keygen", help="create a site's Ed25519 signing key pair (STEM.key, STEM.pub)")
    keygen.add_argument("stem", type=Path, help="path without suffix, e.g. keys/radiology")
    keygen.add_argument("--force", action="store_true", help="overwrite existing key files")
    keygen.set_defaults(handler=_keygen)
    revoke = sub.add_parser("revoke", help="refuse a signing key or one bundle on this PC from now on")
    what = revoke.add_mutually_exclusive_group(required=True)
    what.add_argument("--key", metavar="PUB|KEYID", help="public key file (PEM) or its 16-digit key id")
    what.add_argument("--bundle", metavar="ZSMB|ID", dest="revoke_bundle",
                      help="bundle file or its 64-digit id (SHA-256 of its manifest, see bundle info --json)")
    what.add_argument("--list", action="store_true", help="show what is revoked")
    revoke.set_defaults(handler=_revoke)

    bench = groups.group("bench").add_parser("runtime", help="runtime speed: torch vs onnxruntime vs OpenVINO")
    bench.add_argument("bundle", type=Path)
    bench.add_argument("images", type=Path, metavar="DIR", help="folder of real images")
    bench.add_argument("--json", type=Path, required=True, metavar="OUT")
    bench.add_argument("--model", type=Path, default=None, help="the .zsm the bundle came from (torch eager baseline)")
    bench.add_argument("--repeats", type=int, default=30)
    bench.add_argument("--rss-images", type=int, default=1000)
    bench.add_argument("--ood-out", action="append", default=[], type=Path, metavar="DIR",
                       help="other-modality images for the OOD AUROC (DIR is the in-domain set); repeatable")
    bench.set_defaults(handler=_bench)


def _export(args: argparse.Namespace) -> int:
    from zsmed.bundle.export import export_job, load_calibration
    from zsmed.classifier import load_classifier
    from zsmed.progress import run_with_bar

    classifier = load_classifier(args.model)
    calibration = load_calibration(args.calibration, classifier)
    report = run_with_bar(
        export_job(classifier, args.out, calibration, int8=args.int8, sign_key=args.sign, site=args.site,
                   intended_use=args.intended_use),
        "export",
    )
    worst = max(v for k, v in report.parity.items() if k.endswith("prob_diff"))
    print(f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB{', signed' if report.signed else ''})")
    print(f"parity on {int(report.parity['images'])} images: max |p_torch - p_backend| = {worst:.1e}")
    print(f"OOD gate: threshold {report.ood['threshold']:.3f}, held-out support abstain rate "
          f"{report.ood['held_out_abstain_rate']:.1%}")
    if args.int8:
        figures = {k: v for k, v in report.int8.items() if k not in ("requested", "accepted", "reason")}
        if report.int8["accepted"]:
            print(f"INT8 added: {figures}")
        else:
            print(f"INT8 refused: {report.int8.get('reason')}; figures {figures}", file=sys.stderr)
    for line in report.skipped:
        print(f"skipped calibration image {line}", file=sys.stderr)
    return 0


def _where(result: Any) -> str:
    """The result's file (and frame), control characters escaped: a file named to look like a
    result line (``evil\\nFORGED.jpg\\tmelanoma\\t0.999``) prints as one line."""
    from zsmed.runtime.validate import escape_text

    source = escape_text(result.source)
    return source if result.frame is None else f"{source} [frame {result.frame + 1}]"


def _predict(args: argparse.Namespace) -> int:
    from zsmed.runtime.predict import aggregate_series, expand_inputs, load_predictor
    from zsmed.runtime.validate import escape_text

    if args.secondary_capture and args.sr is None:
        print("zsmed: error: --secondary-capture goes with --sr OUTDIR (where to write it)", file=sys.stderr)
        return 2
    require, keys = _trust(args)
    refused: list[tuple[str, str]] = []
    files = expand_inputs(args.inputs, confined=True, refused=refused)  # a stick never leads to the PC's files
    predictor = load_predictor(args.bundle, backend=args.backend, require_signature=require, trusted_keys=keys,
                               threads=args.threads, n_images=len(files), allow_unsigned=_allow_unsigned(args))
    _warn_other_kinds(predictor.bundle.card, files)
    if args.log is not None:  # opened before predicting: a log that cannot be written stops the run here
        from zsmed.cli.log_commands import open_for_predict

        caselog = open_for_predict(args.log)
    job = predictor.predict_files_job(files, args.batch_size, args.frames)
    # A bar only for folders or many files, on a terminal; otherwise tqdm is not even imported
    # (it costs cold-start time on the hospital PC).
    if sys.stderr.isatty() and (len(files) > 1 or any(p.is_dir() for p in args.inputs)):
        from zsmed.progress import run_with_bar

        results = run_with_bar(job, "predict")
    else:
        from zsmed.progress import run_job

        results = run_job(job)
    out = sys.stdout
    failed = len(refused)
    for source, reason in refused:  # DICOMDIR records pointing off the disc: named, never read
        out.write(json.dumps({"source": source, "error": reason, "abstain": True}) + "\n" if args.json else
                  f"{escape_text(source)}\terror: {escape_text(reason)}\n")
    for result in results:
        failed += result.error is not None
        if args.json:
            out.write(json.dumps(result.to_dict()) + "\n")
        elif result.error:
            out.write(f"{_where(result)}\terror: {escape_text(result.error)}\n")
        elif result.abstain:
            out.write(f"{_where(result)}\tabstain (unlike the model's images, OOD score {result.ood_score})\n")
        else:
            assert result.label is not None
            out.write(f"{_where(result)}\t{escape_text(result.label)}\t{result.probabilities[result.label]:.3f}\n")
    if args.series:
        for entry in aggregate_series(results, predictor.class_names):
            if args.json:
                out.write(json.dumps({"series": entry.source, **entry.to_dict()}) + "\n")
            else:
                label = entry.label or "abstain"
                out.write(f"{escape_text(entry.source)}\t{escape_text(label)}\t({entry.series})\n")
    if args.log is not None:
        from zsmed.cli.log_commands import record_run

        record_run(caselog, predictor.bundle, results, refused, keep_embeddings=args.keep_embeddings)
    if failed:
        print(f"zsmed: {failed} of {len(results) + len(refused)} inputs could not be read", file=sys.stderr)
    if args.sr is not None:
        _write_reports(args.sr, args.secondary_capture, predictor.bundle, results)
    return 1 if failed and failed == len(results) + len(refused) else 0


SERVE_HELP = """\
zsmed as an AI node beside the PACS: listen as zsmed receive does (the PACS's administrator adds this
workstation as a destination, or a routing rule sends it the studies the model is for), classify every image
that arrives with BUNDLE, keep each result in the case log (--log, as predict --log), write a DICOM SR per
result (and a Secondary Capture with --secondary-capture) into --sr-out (default: DIR/results) and, with
--send-results, send the reports to the PACS (the settings', or --pacs), where the radiologist sees them
with the study; with --commit (or the settings' pacs_commit) the PACS is asked to confirm it keeps them, and
its answer, which comes to the port listened on, is a line. One line per image and per step; runs without
torch. Ctrl+C (or --seconds S) stops."""


def _serve(args: argparse.Namespace) -> int:
    import queue

    from zsmed.cli.pacs_options import listen, pacs_node, receiver_config
    from zsmed.dicom.receiver import Batch
    from zsmed.progress import run_job
    from zsmed.runtime.node import process_received_job
    from zsmed.runtime.predict import load_predictor
    from zsmed.runtime.validate import escape_text
    from zsmed.site import load_site_config

    require, keys = _trust(args)
    predictor = load_predictor(args.bundle, backend=args.backend, require_signature=require, trusted_keys=keys,
                               allow_unsigned=_allow_unsigned(args))
    site = load_site_config()
    config = receiver_config(args, site)
    pacs = pacs_node(args) if args.send_results else None  # no PACS to send to: said before listening
    from zsmed.dicom.commitment import DEFAULT_WAIT_S

    commit_wait = DEFAULT_WAIT_S if pacs is not None and (args.commit or site.pacs_commit) else None
    caselog = None
    if args.log is not None:
        from zsmed.cli.log_commands import open_for_predict

        caselog = open_for_predict(args.log)
    reports_dir = args.sr_out or config.folder / "results"
    arrived: queue.Queue[Batch] = queue.Queue()

    def classify_what_arrived() -> None:
        while True:
            try:
                batch = arrived.get_nowait()
            except queue.Empty:
                return
            print(escape_text(batch.summary()), flush=True)
            if not batch.stored:
                continue
            try:
                outcome = run_job(process_received_job(predictor, batch.stored, caselog=caselog,
                                                       reports_dir=reports_dir,
                                                       secondary_capture=args.secondary_capture, pacs=pacs,
                                                       commit_wait=commit_wait))
            except ZsmedError as exc:  # the PACS gone, a full disk: said, and the node listens on
                print(f"zsmed: error: {escape_text(exc)}", file=sys.stderr, flush=True)
                continue
            for line in outcome.lines():
                print(f"  {escape_text(line)}", flush=True)

    print(f"Serving {escape_text(predictor.bundle.card.get('name') or args.bundle.name)} "
          f"({', '.join(predictor.class_names)})", flush=True)
    listen(config, arrived.put, args.seconds, between=classify_what_arrived)
    return 0


def _check(args: argparse.Namespace) -> int:
    from zsmed.progress import run_with_bar
    from zsmed.runtime.check import (
        NO_RESULT,
        UNREADABLE,
        cases_text,
        check_job,
        labelled_cases,
        proportion_text,
        record_check,
        report_html,
    )
    from zsmed.runtime.predict import load_predictor
    from zsmed.runtime.validate import escape_text

    require, keys = _trust(args)
    predictor = load_predictor(args.bundle, backend=args.backend, require_signature=require, trusted_keys=keys,
                               threads=args.threads, allow_unsigned=_allow_unsigned(args))
    check_set = labelled_cases(args.folder, predictor.class_names)
    report = run_with_bar(check_job(predictor, check_set, per_series=not args.per_image), "check")  # bar on a tty
    out = sys.stdout
    for note in report.notes:
        print(f"zsmed: note: {escape_text(note)}", file=sys.stderr)
    out.write(f"model     {escape_text(report.model)} ({len(report.classes)} classes), {cases_text(report)}\n")
    out.write(f"result    {report.summary_line()}\n")
    if report.answered:
        auc = report.auc
        out.write(f"          balanced accuracy {100 * report.balanced_accuracy:.0f} %"
                  + ("" if auc != auc else f", ROC AUC {auc:.3f}") + "\n")
    width = max(len("class"), *(len(escape_text(c)) for c in report.classes))
    out.write(f"\n{'class':<{width}}  cases  {'sensitivity (95 % CI)':<30}  PPV (95 % CI)\n")
    for row in report.per_class():
        out.write(f"{escape_text(row.name):<{width}}  {row.cases:>5}  "
                  f"{proportion_text(row.correct, row.answered):<30}  {proportion_text(row.correct, row.predicted)}\n")
    columns = [*report.classes, NO_RESULT, UNREADABLE]
    out.write("\nconfusion (rows: true class; columns: the model's answer)\n")
    out.write(f"{'':<{width}}  " + "  ".join(escape_text(c) for c in columns) + "\n")
    for truth, counts in report.confusion().items():
        out.write(f"{escape_text(truth):<{width}}  "
                  + "  ".join(f"{counts[c]:>{len(escape_text(c))}}" for c in columns) + "\n")
    wrong = report.wrong_cases()
    if wrong:
        out.write(f"\nnot given their class ({len(wrong)})\n")
        for case in wrong:
            answer = (f"error: {case.error}" if case.error else NO_RESULT if case.outcome == NO_RESULT
                      else f"{case.outcome} {case.confidence:.3f}" if case.confidence is not None else case.outcome)
            where = case.path.parent / case.name  # the path, and for a series how many images it has
            out.write(f"{escape_text(str(where))}\t{escape_text(case.truth)}\t{escape_text(answer)}\n")
    written = ((args.json, lambda: json.dumps(report.to_dict(), indent=2) + "\n"),
               (args.html, lambda: report_html(report, args.site)))
    for target, text in written:
        if target is None:
            continue
        try:
            target.write_text(text(), encoding="utf-8")
        except OSError as exc:
            print(f"zsmed: error: {target}: cannot write ({exc.strerror or exc})", file=sys.stderr)
            return 1
    if args.record:
        kept = record_check(args.bundle, report)
        print(f"zsmed: summary kept in {kept}", file=sys.stderr)
    return 0


def _warn_other_kinds(card: dict[str, Any], files: list[Path]) -> None:
    """One stderr line when inputs are of kinds the model was not built on (a photo model given a CT):
    said before the run, not refused (its OOD gate still abstains where it should)."""
    from zsmed.runtime.input_kinds import card_input_kinds, describe_kinds, input_kinds_of
    from zsmed.runtime.validate import escape_text

    model_kinds = card_input_kinds(card)
    if not model_kinds:
        return
    # at most MAX_KIND_FILES headers, spread over the inputs: a 10,000-image study costs seconds, not minutes
    others = sorted(kind for kind in input_kinds_of(files) if kind not in model_kinds)
    if others:
        print(escape_text(f"zsmed: warning: the model was built on {describe_kinds(model_kinds)} "
                          f"({', '.join(model_kinds)}); some inputs are of another kind: {', '.join(others)}"),
              file=sys.stderr)


def _write_reports(out_dir: Path, secondary_capture: bool, bundle: Any, results: Any) -> None:
    """``predict --sr``: one SR (and SC) per result that is not an error; photos are skipped, a file
    the report cannot be made for gets one line. highdicom is imported only here (slow import)."""
    from zsmed.progress import run_with_bar
    from zsmed.report import model_identity, write_reports_job
    from zsmed.runtime.validate import escape_text

    job = write_reports_job(results, model_identity(bundle), out_dir, secondary_capture=secondary_capture)
    written = run_with_bar(job, "reports")  # a bar only on a terminal
    for line in written.refused:
        print(f"zsmed: no report: {escape_text(line)}", file=sys.stderr)
    print(f"zsmed: {escape_text(written.summary(out_dir, secondary_capture))}", file=sys.stderr)


def _info(args: argparse.Namespace) -> int:
    from zsmed.preprocess import COLOUR_POLICIES, WINDOW_POLICIES
    from zsmed.runtime.bundle import read_bundle

    bundle = read_bundle(args.bundle)
    card = bundle.card
    if args.json:
        print(json.dumps({"manifest": bundle.manifest, "card": card, "bundle_id": bundle.bundle_id}, indent=2))
        return 0
    pre = card["preprocess"]
    lines = [
        f"bundle      {bundle.path} (format {bundle.manifest['format_version']}, "
        f"opset {bundle.manifest['onnx_opset']})",
        f"id          {bundle.bundle_id[:16]}",
        f"method      {card.get('method')} on {_field(card, 'encoder', 'name')}",
        f"classes     {', '.join(card['class_names'])}",
        f"support     {card.get('support_counts')}",
        f"preprocess  {pre['size']}px, mean {pre['mean']}, std {pre['std']}, keep_aspect {pre.get('keep_aspect')}",
        f"window      {bundle.preprocess.window}: {WINDOW_POLICIES[bundle.preprocess.window]}",
        f"colour      {bundle.preprocess.colour}: {COLOUR_POLICIES[bundle.preprocess.colour]}",
        f"OOD gate    {card.get('ood_gate', {}).get('method')}, threshold {card.get('ood_gate', {}).get('threshold')}",
        f"INT8        {'yes' if bundle.has_int8 else 'no'} {_field(card, 'int8', 'reason') or ''}".rstrip(),
        f"created     {card.get('created')} (exported {card.get('exported')}, site {card.get('site') or '-'})",
        f"signed      {'yes (not checked: use verify --trusted-key)' if bundle.signature_present else 'no'}",
        f"intended    {card.get('intended_use')}",
        f"built on    {_kinds_line(card)}",
    ]
    from zsmed.runtime.validate import escape_text

    print("\n".join(escape_text(line) for line in lines))  # card text is the bundle maker's: no escapes
    return 0


def _kinds_line(card: dict[str, Any]) -> str:
    from zsmed.runtime.input_kinds import card_input_kinds, describe_kinds

    kinds = card_input_kinds(card)
    return f"{describe_kinds(kinds)} ({', '.join(kinds)})" if kinds else "not recorded (any kind of image)"


def _field(card: dict[str, Any], key: str, inner: str) -> Any:
    value = card.get(key)
    return value.get(inner) if isinstance(value, dict) else None


def _verify(args: argparse.Namespace) -> int:
    from zsmed.runtime.backends import create_backend
    from zsmed.runtime.bundle import read_bundle
    from zsmed.runtime.predict import Predictor

    require, keys = _trust(args)
    bundle = read_bundle(args.bundle, require_signature=require, trusted_keys=keys,
                         allow_unsigned=_allow_unsigned(args))
    predictor = Predictor(bundle, create_backend(bundle, args.backend))
    import numpy as np

    size = bundle.preprocess.size
    probabilities, _ = predictor.infer(np.zeros((1, 3, size, size), dtype=np.float32))
    if not np.isfinite(probabilities).all():
        print("zsmed: error: the model gives non-finite outputs", file=sys.stderr)
        return 2
    signature = f"signature OK (key {bundle.signed_by})" if bundle.signed_by else (
        "signed, signature not checked (no --trusted-key)" if bundle.signature_present else
        f"unsigned, accepted only because of --allow-unsigned ({len(keys)} trusted key(s) configured)" if keys
        else "unsigned")
    print(f"{bundle.path}: OK: {len(bundle.files)} files match the manifest; {signature}; loads in {args.backend}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from zsmed.runtime.format import generate_keypair

    private, public = generate_keypair(args.stem, overwrite=args.force)
    print(f"private key {private} (keep it on the workstation; sign with: zsmed export ... --sign {private})")
    print(f"public key  {public} (copy to hospital PCs: zsmed predict --require-signature --trusted-key {public})")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from zsmed.bundle.bench import run_runtime_bench

    result = run_runtime_bench(args.bundle, args.images, model_path=args.model, repeats=args.repeats,
                               rss_images=args.rss_images, ood_out_dirs=args.ood_out)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    """``zsmed bundle revoke``: the revocation list in the user data folder (``revoked.json``)."""
    from zsmed.runtime import format as fmt
    from zsmed.runtime.trust import load_revocations, revocation_file, revoke

    if args.list:
        current = load_revocations()
        print(f"revocation list {revocation_file()}")
        for key in sorted(current.keys):
            print(f"key     {key}")
        for bundle_id in sorted(current.bundles):
            print(f"bundle  {bundle_id}")
        return 0
    if args.key is not None:
        key_id = args.key
        if Path(args.key).is_file():
            key_id = fmt.key_fingerprint(fmt._raw_public(fmt.load_public_key(args.key)))
        revoke(key_id=key_id)
        print(f"revoked key {key_id.strip().lower()}: bundles it signed are refused on this PC")
        return 0
    bundle_id = args.revoke_bundle
    if Path(bundle_id).is_file():
        from zsmed.errors import BundleError
        from zsmed.runtime.safezip import SafeZip

        with SafeZip(Path(bundle_id), BundleError, "bundle") as archive:
            bundle_id = fmt.sha256_hex(archive.read(fmt.MANIFEST, fmt.MAX_MANIFEST_BYTES))
    revoke(bundle_id=bundle_id)
    print(f"revoked bundle {bundle_id.strip().lower()}: it is refused on this PC")
    return 0
