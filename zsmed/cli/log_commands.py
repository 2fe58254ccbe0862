"""``zsmed log list|show|similar|review|export|verify|stats|backup|sr`` (the site's case log) and
``zsmed bench log``. Every command takes ``--log PATH`` (default: the site's case-log setting)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zsmed.cli.pacs_options import add_pacs_arguments, pacs_node, said_sent

if TYPE_CHECKING:
    from collections.abc import Sequence

    from zsmed.runtime.bundle import Bundle
    from zsmed.runtime.predict import Prediction
    from zsmed.store import CaseLog, PredictionRecord


def _log_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log", type=Path, default=None, metavar="PATH",
                        help="case-log file (default: the site's setting, else caselog.sqlite in the user data dir)")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None, metavar="M", help="model name or the start of its SHA-256")
    parser.add_argument("--since", default=None, metavar="DATE", help="from this day on (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", default=None, metavar="DATE", help="up to and including this day (UTC)")
    parser.add_argument("--unreviewed", action="store_true", help="only predictions no reader has reviewed")
    parser.add_argument("--abstained", action="store_true", help="only predictions where the model abstained")


def register(groups: Any) -> None:
    log = groups.top.add_parser("log", help="the site's case log: list, review, similar cases, verify, stats, export, "
                                             "backup")
    sub = log.add_subparsers(dest="log_command", metavar="WHAT", required=True)

    listing = sub.add_parser("list", help="logged predictions, newest first")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=50, help="at most this many (default 50; 0: all)")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(handler=_list)

    show = sub.add_parser("show", help="one prediction with its image, model and reviews")
    show.add_argument("id", type=int, help="prediction number (from zsmed log list)")
    show.add_argument("--json", action="store_true", help="one JSON object")
    show.set_defaults(handler=_show)

    similar = sub.add_parser("similar", help="the reviewed cases whose images the model finds most alike",
                             description="The cases a reader reviewed whose images the same model finds most "
                                         "alike the image of prediction ID (the cosine of the model's embeddings), "
                                         "with the reader's class for each: what this site's confirmed cases say "
                                         "beside the model. Needs the embeddings the app keeps (zsmed predict: "
                                         "--log --keep-embeddings).")
    similar.add_argument("id", type=int, help="prediction number (from zsmed log list)")
    similar.add_argument("-k", type=int, default=5, metavar="N", help="how many (default 5)")
    similar.add_argument("--json", action="store_true", help="one JSON object per line")
    similar.set_defaults(handler=_similar)

    review = sub.add_parser("review", help="record the reader's decision on a prediction")
    review.add_argument("id", type=int, help="prediction number (from zsmed log list)")
    verdict = review.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--confirm", action="store_true", help="the reader agrees with the model's class")
    verdict.add_argument("--correct", metavar="CLASS", default=None, help="the reader's class (one of the model's)")
    review.add_argument("--comment", default="", metavar="TEXT", help="free-text comment kept with the review")
    review.add_argument("--reader", default=None, help="reader's name (default: the site's reader, else the OS user)")
    review.set_defaults(handler=_review)

    export = sub.add_parser("export", help="predictions with their latest review as CSV or JSON")
    fmt = export.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--csv", action="store_true", help="comma-separated, one row per prediction")
    fmt.add_argument("--json", action="store_true", help="one JSON object per line")
    export.add_argument("--out", type=Path, default=None, metavar="FILE", help="file to write (default: stdout)")
    _filters(export)
    export.set_defaults(handler=_export)

    verify = sub.add_parser("verify", help="check the audit chain and the database; names the first broken row")
    verify.add_argument("--json", action="store_true", help="the result as one JSON object")
    verify.set_defaults(handler=_verify)

    stats = sub.add_parser("stats", help="per model: predictions, reviews, agreement with the reader, abstain "
                                         "rate, confusion")
    stats.add_argument("--by", choices=("month",), default=None, help="one row per model and month")
    stats.add_argument("--json", action="store_true", help="one JSON object per row")
    stats.set_defaults(handler=_stats)

    backup = sub.add_parser("backup", help="consistent copy of the log (SQLite online backup), also while others "
                                           "write")
    backup.add_argument("dest", type=Path, help="file to create, or a folder (a dated name is chosen)")
    backup.set_defaults(handler=_backup)

    sr = sub.add_parser("sr", help="write a DICOM Structured Report for logged predictions on DICOM images")
    sr.add_argument("ids", nargs="+", type=int, metavar="ID", help="prediction numbers (from zsmed log list)")
    sr.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the DICOM files")
    sr.add_argument("--send", action="store_true",
                    help="also store the reports on the PACS (the settings', or --pacs): results back to the PACS")
    add_pacs_arguments(sr)
    sr.set_defaults(handler=_sr)

    for parser in (listing, show, similar, review, export, verify, stats, backup, sr):
        _log_option(parser)

    bench = groups.group("bench").add_parser("log", help="case-log speed: batched writes, concurrent writers, "
                                                         "verify and stats on many rows")
    bench.add_argument("--json", type=Path, required=True, metavar="OUT", help="file for the figures (JSON)")
    bench.add_argument("--rows", type=int, default=1_000_000, help="predictions for the verify/stats run")
    bench.add_argument("--images", type=Path, default=None, metavar="DIR",
                       help="real images whose paths the logged predictions name (default: pydicom's test files)")
    bench.add_argument("--workdir", type=Path, default=None, help="where the bench logs go (default: a temp folder)")
    bench.set_defaults(handler=_bench)


def _open(args: argparse.Namespace, *, readonly: bool = True) -> CaseLog:
    from zsmed.store import open_case_log

    return open_case_log(args.log, readonly=readonly)


def _filter_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"model": args.model, "since": args.since, "until": args.until, "unreviewed": args.unreviewed,
            "abstained": args.abstained}


def _clean(text: str | None) -> str:
    """One line, no terminal control characters (file names and comments are untrusted)."""
    from zsmed.runtime.validate import escape_text

    return escape_text(text or "")


def open_for_predict(path: str) -> CaseLog:
    """``zsmed predict --log [PATH]``: the log named, or the site's ("" or no PATH)."""
    from zsmed.store import open_case_log

    return open_case_log(Path(path) if path else None)


def record_run(log: CaseLog, bundle: Bundle, results: Sequence[Prediction],
               refused: Sequence[tuple[str, str]] = (), *, keep_embeddings: bool = False) -> list[int]:
    """Record a predict run (refused inputs as errors too) in one transaction, and say where."""
    from zsmed.runtime.predict import Prediction

    entries = [*(Prediction(source=source, error=reason) for source, reason in refused), *results]
    with log:
        ids = log.record_predictions(bundle, entries, keep_embeddings=keep_embeddings)
    if ids:
        print(f"zsmed: logged {len(ids)} results in {_clean(str(log.path))} (ids {ids[0]}-{ids[-1]})",
              file=sys.stderr)
    return ids


def _result(record: PredictionRecord) -> str:
    if record.error:
        return f"error: {_clean(record.error)}"
    if record.abstain:
        return f"abstain (OOD {record.ood_score})"
    return f"{record.label} {record.probabilities.get(str(record.label), 0.0):.3f}"


def _reviewed(record: PredictionRecord) -> str:
    if record.review is None:
        return "-"
    return f"{record.review.verdict} {record.review.label}" if record.review.verdict == "corrected" else "confirmed"


def _where(record: PredictionRecord) -> str:
    name = Path(record.source).name if record.source else record.sop_uid or record.image_sha256 or "?"
    return _clean(name if record.frame is None else f"{name} [frame {record.frame + 1}]")


def _list(args: argparse.Namespace) -> int:
    with _open(args) as log:
        records = log.iter_predictions(**_filter_args(args), limit=args.limit or None, newest_first=True)
        out = sys.stdout
        n = 0
        for record in records:
            n += 1
            if args.json:
                out.write(json.dumps(record.to_dict()) + "\n")
            else:
                out.write(f"{record.id}\t{record.time[:19].replace('T', ' ')}\t{_clean(record.model_name)}\t"
                          f"{_where(record)}\t{_result(record)}\t{_reviewed(record)}\n")
        if not n and not args.json:
            print(f"no predictions match in {log.path}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    with _open(args) as log:
        record = log.get(args.id)
    if args.json:
        print(json.dumps(record.to_dict(), indent=2))
        return 0
    lines = [
        f"prediction  {record.id} at {record.time} on {_clean(record.workstation)} by {_clean(record.user)}",
        f"model       {_clean(record.model_name)} ({record.model_sha256[:16]}), signed by {record.signer or '-'}",
        f"image       {_clean(record.source) or '-'}"
        + (f" [frame {record.frame + 1}]" if record.frame is not None else ""),
    ]
    if record.sop_uid:
        lines += [f"            {record.modality or '?'} study {record.study_date or '?'}, study {record.study_uid}",
                  f"            series {record.series_uid}, SOP instance {record.sop_uid}"]
    elif record.image_sha256:
        lines.append(f"            SHA-256 {record.image_sha256}")
    lines.append(f"result      {_result(record)}")
    if record.probabilities:
        lines.append("            " + ", ".join(f"{c} {p:.3f}" for c, p in record.probabilities.items()))
    if record.review:
        r = record.review
        lines.append(f"review      {r.verdict} {r.label} by {_clean(r.reader)} at {r.time}"
                     + (f": {_clean(r.comment)}" if r.comment else ""))
    else:
        lines.append("review      none")
    print("\n".join(lines))
    return 0


def _similar(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    with _open(args) as log:
        cases = log.similar(args.id, args.k)  # an unknown id is said as such
    if not cases:
        print(f"zsmed: no reviewed case to compare prediction {args.id} with: it needs the image's embedding (kept "
              "by the app, or zsmed predict --log --keep-embeddings) and reviewed cases of the same model that "
              "have one", file=sys.stderr)
        return 0
    for case in cases:
        if args.json:
            print(json.dumps(asdict(case)))
            continue
        said = "no result" if case.model_label is None else case.model_label
        name = Path(case.source).name if case.source else "?"
        print(f"{case.prediction_id}	{case.similarity:.3f}	{_clean(case.label)}	{case.verdict} by "
              f"{_clean(case.reader)} (the model said {_clean(said)})	{case.time[:10]}	{_clean(name)}")
    return 0


def _review(args: argparse.Namespace) -> int:
    with _open(args, readonly=False) as log:
        review_id = log.review(args.id, confirm=args.confirm, correct_to=args.correct, comment=args.comment,
                               reader=args.reader)
        record = log.get(args.id)
    assert record.review is not None
    print(f"review {review_id}: prediction {args.id} {record.review.verdict} as {record.review.label} "
          f"by {_clean(record.review.reader)}")
    return 0


def _export(args: argparse.Namespace) -> int:
    with _open(args) as log:
        write = log.export_csv if args.csv else log.export_json
        n = write(args.out if args.out is not None else sys.stdout, **_filter_args(args))
    if args.out is not None:
        print(f"wrote {n} predictions to {args.out}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    with _open(args) as log:
        result = log.verify()
        path = log.path
    if args.json:
        from dataclasses import asdict

        print(json.dumps(asdict(result), indent=2))
    elif result.ok:
        print(f"{path}: OK: {result.message}")
    else:
        print(f"{path}: BROKEN: {result.message}", file=sys.stderr)
        for problem in result.problems[1:]:
            print(f"  also: {problem}", file=sys.stderr)
    return 0 if result.ok else 1


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _stats(args: argparse.Namespace) -> int:
    with _open(args) as log:
        rows = log.stats(by_month=args.by == "month")
    if args.json:
        from dataclasses import asdict

        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    if not rows:
        print("no predictions logged yet")
        return 0
    head = f"{'model':<28} {'month':<7} {'predicted':>9} {'reviewed':>8} {'agree':>7} {'abstain':>7} {'errors':>6}"
    print(head)
    for r in rows:
        print(f"{_clean(r.model_name)[:28]:<28} {r.month or 'all':<7} {r.predictions:>9} {r.reviewed:>8} "
              f"{_pct(r.agreement):>7} {_pct(r.abstain_rate):>7} {r.errors:>6}")
    for r in rows:
        if not r.confusion:
            continue
        readers = sorted({c for row in r.confusion.values() for c in row})
        when = f" {r.month}" if r.month else ""
        print(f"\n{_clean(r.model_name)}{when}: the model's class (rows) against the reader's (columns)")
        print(f"{'':<12}" + "".join(f"{_clean(c)[:9]:>10}" for c in readers))
        for model_class in sorted(r.confusion):
            counts = r.confusion[model_class]
            print(f"{_clean(model_class)[:12]:<12}" + "".join(f"{counts.get(c, 0):>10}" for c in readers))
    return 0


def _backup(args: argparse.Namespace) -> int:
    with _open(args) as log:
        dest = log.backup(args.dest)
    print(f"backed up {log.path} to {dest}")
    return 0


def _sr(args: argparse.Namespace) -> int:
    from zsmed.errors import ZsmedError
    from zsmed.report.sr import ModelIdentity, ReaderReview, write_result_sr

    node = pacs_node(args) if args.send else None  # no PACS set: said before anything is written
    args.out.mkdir(parents=True, exist_ok=True)
    failed = 0
    written: list[Path] = []
    with _open(args) as log:
        models = {m.sha256: m for m in log.models()}
        for prediction_id in args.ids:
            try:
                record = log.get(prediction_id)
                if record.error:
                    raise ZsmedError(f"prediction {prediction_id} is a file the model could not read: no report")
                if not record.source:
                    raise ZsmedError(f"prediction {prediction_id} was logged before zsmed kept source paths: "
                                     f"no image to report on")
                model = models[record.model_sha256]
                card = model.card
                version = card.get("version") or (f"exported {card['exported']}" if card.get("exported") else "")
                identity = ModelIdentity(name=model.name, version=str(version or f"id {model.sha256[:16]}"),
                                         bundle_sha256=model.file_sha256 or model.sha256)
                reviewed = record.review  # the latest: the reader's decision goes with the model's result
                review = None if reviewed is None else ReaderReview(
                    verdict=reviewed.verdict, label=reviewed.label, reader=reviewed.reader, time=reviewed.time,
                    comment=reviewed.comment or "")
                path = write_result_sr(record.source, probabilities=record.probabilities, label=record.label,
                                       abstain=record.abstain, ood_score=record.ood_score, model=identity,
                                       out_dir=args.out, frame=record.frame, review=review)
                print(f"{prediction_id}\t{path}")
                written.append(Path(path))
            except ZsmedError as exc:
                failed += 1
                print(f"zsmed: error: {exc}", file=sys.stderr)
    if node is not None and written:
        from zsmed.dicom.network import send_job
        from zsmed.progress import run_with_bar

        result = run_with_bar(send_job(written, node, timeout=args.timeout), "sending")
        said_sent(result)
        failed += len(result.problems)
    return 0 if not failed else (2 if failed >= len(args.ids) and not written else 1)


def _bench(args: argparse.Namespace) -> int:
    from zsmed.store.bench import run_log_bench

    result = run_log_bench(rows=args.rows, images=args.images, workdir=args.workdir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))
    return 0
