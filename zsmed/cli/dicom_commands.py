"""``zsmed scan``, ``zsmed inspect``, ``zsmed tags``, ``zsmed deidentify``, ``zsmed key-images``,
``zsmed read-report``, ``zsmed reformat`` and ``zsmed bench scan``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zsmed.cli.pacs_options import (
    add_pacs_arguments,
    add_receive_arguments,
    listen,
    pacs_node,
    receiver_config,
    said_sent,
)

INSPECT_HELP = """\
Inspect DICOM files: header summary and the SHA-256 of the decoded pixels.

Output (--json): JSON Lines, one object per input file, in input order, streamed as each file is
done. Keys: file, sop_class, sop_class_name, modality, transfer_syntax, transfer_syntax_name,
photometric, rows, cols, frames, bits_allocated, pixel_sha256 (SHA-256 of the stored-value array
exactly as pydicom 3's Dataset.pixel_array returns it: all frames, C order, its own dtype), dtype,
shape; optional warnings. A file with no image or a broken one has "error" (one-line reason)
instead of pixel_sha256. Folders are expanded recursively.

Pixels are decoded in a worker process with a time limit: a crashing or hanging codec gives that
file an error and the command goes on. Exit status 0 when every input was handled (per-file errors
included); 2 for usage errors."""


def _scan(args: argparse.Namespace) -> int:
    from zsmed.dicom.scan import format_tree, scan_job
    from zsmed.progress import run_with_bar

    index = run_with_bar(scan_job(args.paths), "scanning")
    if args.json:
        json.dump(index.to_dict(), sys.stdout, indent=1 if args.indent else None)
        sys.stdout.write("\n")
    else:
        print(format_tree(index))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from zsmed.dicom.inspect import expand_inputs, inspect_job
    from zsmed.progress import run_with_bar

    files = expand_inputs(args.files)

    def emit(record: dict[str, Any]) -> None:
        if args.json:
            sys.stdout.write(json.dumps(record) + "\n")
        else:
            if "error" in record:
                sys.stdout.write(f"{record['file']}: ERROR {record['error']}\n")
            else:
                sys.stdout.write(
                    f"{record['file']}: {record.get('sop_class_name') or record.get('sop_class')} "
                    f"{record.get('modality') or ''} {record.get('transfer_syntax_name') or ''} "
                    f"{record.get('photometric')} {record.get('rows')}x{record.get('cols')}x{record.get('frames')} "
                    f"{record.get('bits_allocated')}-bit sha256={record['pixel_sha256'][:16]}\n"
                )
        sys.stdout.flush()

    run_with_bar(inspect_job(files, timeout=args.timeout, on_record=emit), "inspecting")
    return 0


TAGS_HELP = """\
List every element of a DICOM file, as dcmdump does: tag, VR, name and value, file meta first,
sequences indented under their items, private tags named from pydicom's private dictionary when
their creator is known. Values are one line each (long ones cut); pixel data and other large values
are not read, only their length is shown.

--filter keeps the elements whose tag, name or value contains TEXT (any case), with the sequence and
item lines above them. --json prints one JSON list of rows (depth, tag, name, vr, value, private,
children, kind). A file that cannot be read is one line naming it and the reason, exit status 2."""


def _tags(args: argparse.Namespace) -> int:
    from zsmed.dicom.tags import dump_lines, filter_rows, read_tag_rows, row_dict, summary_text

    rows, notes = read_tag_rows(args.file)
    shown = filter_rows(rows, args.filter) if args.filter else rows
    if args.json:
        json.dump([row_dict(row) for row in shown], sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for line in dump_lines(shown):
            sys.stdout.write(line + "\n")
        print(f"# {summary_text(rows)}", file=sys.stderr)
    for note in notes:
        print(f"zsmed: warning: {note}", file=sys.stderr)
    return 0


DEIDENTIFY_HELP = """\
Copy DICOM images de-identified into a folder, for a teaching file, a research colleague or a
multidisciplinary meeting. Folders are read recursively and a DICOMDIR's listed files are read.

With dicognito (MIT): person names, patient and order IDs, addresses and the institution are
replaced by made-up values, every UID is remapped (one export keeps a study's images together under
one new Study Instance UID, a patient under one new name and ID) and every date moves back by one
whole-day offset (intervals kept). zsmed removes every private element, comments and other free text,
physicians' and operators' identification, device identifiers and the original attributes sequence.
Study and series descriptions, protocol name and body part are kept (emptied when they contain the
patient's name or an ID): check any other text typed into them. Pixel data is copied byte for byte:
text burned into the pixels (ultrasound, secondary captures, photographs) is NOT removed, and such
images are named in the summary, unless you name where it is: --blank-outside-ultrasound blanks
everything around an ultrasound machine's image (where it prints the name and ID), --blank X,Y,W,H
blanks a box of pixels (e.g. 0,0,1024,60: a capture station's header band) on every such image; those
images are written uncompressed with the areas black, and marked as cleaned; --blank-found-text also
blanks the words the OCR program Tesseract finds on them, wherever they are (a label typed over the
scan too; OCR misses some text, so check them; `zsmed find-text OUT` looks again). CT, MR and other images
are never changed. Reports and other objects without an image are not exported. No list linking old
and new identifiers is written.

Output: OUT/<new patient ID>/<new study date>_<n>/<modality>_<series number>/IM0001.dcm; an existing
file is never overwritten. --seed TEXT gives the same new identifiers and date offset on every run
(keep it secret: with it the mapping can be recomputed from the originals).

Prints one summary line; each file that could not be exported is one line on stderr. Exit status 0
when at least one file was written and none failed, 1 when a file failed, 2 for bad input (a missing
path, nothing to export)."""


def _box(text: str) -> Any:
    """argparse type of --blank: a ``Box``, or argparse's one-line error."""
    from zsmed.dicom.burned_in import Box
    from zsmed.errors import ConfigError

    try:
        return Box.parse(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(exc.reason) from None


def _said_missing(paths: Sequence[str | Path]) -> bool:
    """The first path that does not exist, said in one line (exit status 2 follows); False when all do."""
    import os

    from zsmed.runtime.validate import escape_text

    for path in paths:
        if not os.path.lexists(path):
            print(f"zsmed: error: {escape_text(path)}: file not found", file=sys.stderr)
            return True
    return False


def _deidentify(args: argparse.Namespace) -> int:

    from zsmed.dicom.deidentify import Blanking, deidentify_paths_job
    from zsmed.progress import run_with_bar
    from zsmed.runtime.validate import escape_text

    if _said_missing(args.paths):
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"zsmed: error: {escape_text(args.out)}: is not a folder", file=sys.stderr)
        return 2
    blanking = Blanking(outside_ultrasound=args.blank_outside_ultrasound, boxes=tuple(args.blank),
                        found_text=args.blank_found_text)
    if args.dicomdir:
        from zsmed.dicom.media import deidentify_to_media_job

        result, media = run_with_bar(deidentify_to_media_job(args.paths, args.out, seed=args.seed,
                                                             blanking=blanking), "de-identifying")
        print(escape_text(result.summary(str(args.out))))  # staged beside it, then written there as a file-set
        print(escape_text(media.summary()))
        for problem in [*result.problems, *media.problems]:
            print(f"zsmed: not exported: {escape_text(problem)}", file=sys.stderr)
        return 1 if result.problems or media.problems else (0 if media.written else 2)
    result = run_with_bar(deidentify_paths_job(args.paths, args.out, seed=args.seed, blanking=blanking),
                          "de-identifying")
    print(escape_text(result.summary()))
    for problem in result.problems:
        print(f"zsmed: not exported: {escape_text(problem)}", file=sys.stderr)
    if result.problems:
        return 1
    return 0 if result.written else 2


FIND_TEXT_HELP = """\
Look for text burned into the pixels of each image (the patient's name, an ID, a date, a label typed over
an ultrasound scan) with the OCR program Tesseract, installed with zsmed (Debian / Ubuntu: apt-get install
tesseract-ocr); nothing leaves the PC. Run it on a de-identified export before it leaves the hospital.
Folders are read recursively; objects without an image (reports) are skipped. Each image is read as the
viewer shows it; a multi-frame image at its first, middle and last frames.

Prints one line per image where text is found (its words, the first eight), one line per file that could
not be read, and a summary line. OCR misses some text and reads speckle as words now and then: an image it
finds nothing on still needs a look. Exit status 0 when no text was found, 1 when some was (or a file could
not be read), 2 for bad input (a missing path, no OCR program)."""


MEDIA_HELP = """\
Write DICOM files as a CD or USB stick's DICOM file-set, as a PACS gives a patient or a referring physician their
study: the files under PT000000/ST000000/SE000000/IM000000 with a DICOMDIR at the top (what every DICOM viewer
opens) and a README.TXT, in DIR (--out; new or empty). The images' data sets are written unchanged. Values the
DICOMDIR's records need and a file leaves empty (a Patient ID, a Study ID, an instance number, a date) are filled
in the DICOMDIR only, and counted. Folders are read recursively; a DICOMDIR given is skipped (its images are
written when given), the same image given twice is written once.

Prints one summary line; a file left out (not DICOM, no UIDs, a record that cannot be made) is one line on
stderr naming it and why, exit 1; exit 0 when every file given was written. Burn DIR's content to a CD or copy
it to a stick as it is. For images that must not show who the patient is, run zsmed deidentify first and give
its output folder here."""


def _media(args: argparse.Namespace) -> int:
    from zsmed.dicom.inspect import expand_inputs
    from zsmed.dicom.media import write_media_job
    from zsmed.progress import run_with_bar
    from zsmed.runtime.validate import escape_text

    if _said_missing(args.paths):
        return 2
    result = run_with_bar(write_media_job(expand_inputs(args.paths), args.out, file_set_id=args.label), "writing")
    print(escape_text(result.summary()))
    for problem in result.problems:
        print(f"zsmed: left out: {escape_text(problem)}", file=sys.stderr)
    return 1 if result.problems or not result.written else 0


def _find_text(args: argparse.Namespace) -> int:

    from zsmed.dicom.inspect import expand_inputs
    from zsmed.dicom.text_in_pixels import describe_found, find_text_job
    from zsmed.progress import run_with_bar
    from zsmed.runtime.validate import escape_text

    if _said_missing(args.paths):
        return 2
    checks = run_with_bar(find_text_job(expand_inputs(args.paths)), "looking for text")
    images = [check for check in checks if not check.skipped and check.problem is None]
    with_text = [check for check in images if check.found]
    for check in checks:
        if args.json and not check.skipped:
            words = [{"text": word.text, "confidence": word.confidence,
                      "box": [word.box.left, word.box.top, word.box.width, word.box.height]} for word in check.found]
            record: dict[str, Any] = {"file": check.path, "words": words}
            if check.problem is not None:
                record["error"] = check.problem
            print(json.dumps(record))
        elif check.problem is not None:
            print(f"zsmed: not read: {escape_text(check.path)}: {escape_text(check.problem)}", file=sys.stderr)
        elif check.found:
            print(f"{escape_text(check.path)}: {escape_text(describe_found(check.found))}")
    problems = len(checks) - len(images) - sum(check.skipped for check in checks)
    summary = (f"text found on {len(with_text)} of {len(images)} image{'s' if len(images) != 1 else ''}" if with_text
               else f"no text found on {len(images)} image{'s' if len(images) != 1 else ''}")
    if problems:
        summary += f"; {problems} file{'s' if problems != 1 else ''} could not be read"
    print(summary, file=sys.stderr if args.json else sys.stdout)
    return 1 if with_text or problems else 0


PACS_HELP_TAIL = """
The PACS is the one in this PC's settings (the app's Settings, or the machine-wide file IT leaves for every
workstation: "pacs": "AE_TITLE@HOST:PORT", "pacs_calling_ae") unless --pacs names another. The PACS's
administrator registers this workstation's AE title (default ZSMED) with its address. Nothing is sent
anywhere but to that address on the hospital's network."""

SEND_HELP = """\
Store DICOM files on the PACS (DICOM C-STORE), as a modality does: the reports, measurements, views, key
image notes and reformatted series zsmed saved, or any other DICOM files. Folders are read recursively; a
DICOMDIR (a CD's index) is skipped. All go in one association, each in its own encoding where the PACS
takes it, else uncompressed.

With --commit, the PACS is then asked to confirm that it keeps what was stored (DICOM storage commitment):
its answer comes on the same connection or, as most PACS do, on a new one to this workstation's AE title, so
zsmed listens on --commit-port (default: the settings' port for receiving, else 11112; the address the PACS's
administrator registered for this AE title) for up to --commit-wait seconds; the answer is one line (which
files the PACS keeps, and why not the others). The files stay on this PC whatever it says.

Prints one summary line; each file not sent is one line on stderr naming it and the PACS's reason. Exit
status 0 when every file was stored (and, with --commit, is kept), 1 when one was not (or the PACS does not
keep it, or did not answer in time), 2 when the PACS could not be reached (the reason in one line: refused,
unknown host, AE title not known, no answer) or for bad input.""" + PACS_HELP_TAIL

ECHO_HELP = """\
Check that this PC reaches the PACS as a DICOM node (a C-ECHO, the "DICOM ping" a PACS administrator asks
for first): prints how long it took, or one line saying what failed (refused, unknown host, the PACS does
not know this workstation's AE title, no answer). Exit status 0 when it answered, 2 when not.""" + PACS_HELP_TAIL


def _echo(args: argparse.Namespace) -> int:
    from zsmed.dicom.network import echo

    node = pacs_node(args)
    seconds = echo(node, timeout=args.timeout)
    print(f"{node} answered the echo in {seconds * 1000:.0f} ms (as {node.calling_ae})")
    return 0


def _send(args: argparse.Namespace) -> int:
    from zsmed.dicom.inspect import expand_inputs
    from zsmed.dicom.network import send_job
    from zsmed.progress import run_with_bar
    from zsmed.runtime.validate import escape_text

    if _said_missing(args.paths):
        return 2
    node = pacs_node(args)
    if not args.commit:
        return said_sent(run_with_bar(send_job(expand_inputs(args.paths), node, timeout=args.timeout), "sending"))
    from zsmed.dicom.commitment import FILES_STAY, report_listener, send_and_commit_job
    from zsmed.dicom.receiver import DEFAULT_PORT
    from zsmed.site import load_site_config

    port = args.commit_port
    if port is None:
        configured = load_site_config().receiver_config()
        port = configured.port if configured is not None else DEFAULT_PORT
    # listening before anything is sent: a port that cannot be listened on is said while nothing has gone yet
    # over TLS where this workstation has a certificate to show the PACS calling back (as its receiver does)
    listen_tls = node.tls if node.tls is not None and node.tls.cert_file is not None else None
    with report_listener(node.calling_ae, port, listen_tls):
        done = run_with_bar(send_and_commit_job(expand_inputs(args.paths), node, timeout=args.timeout,
                                                wait=args.commit_wait,
                                                listening=f"zsmed listened as {node.calling_ae} on port {port}"),
                            "sending")
    code = said_sent(done.sent)
    if done.report is not None:
        print(escape_text(done.report.summary()))
    elif done.problem:
        print(f"zsmed: {escape_text(done.problem)}", file=sys.stderr)
    for line in done.not_kept():
        print(f"zsmed: not kept by the PACS: {escape_text(line)}", file=sys.stderr)
    if done.unconfirmed:
        print(f"zsmed: {FILES_STAY}", file=sys.stderr)
    return code if done.kept_all or not done.sent.sent else 1


QUERY_HELP = """\
List a patient's studies on the PACS (DICOM C-FIND, study root): one line per study, newest first (date,
modalities, description, images, patient), with its Study Instance UID for zsmed retrieve; --json for one JSON
object per study. --patient-id and --name (DICOM wildcards: DOE* finds every DOE) say whose.""" + PACS_HELP_TAIL

RETRIEVE_HELP = """\
Fetch studies from the PACS (DICOM C-GET: the images come back on the same connection, so the PACS needs no
route to this PC) into DIR (--into; else the settings' folder for received studies, else the zsmed data
folder's 'received'), kept as the PACS keeps them, in DIR/<patient ID>/<study UID>/<series UID>/<instance UID>.dcm,
each written whole or not at all, an image already here kept once. STUDY_UID from zsmed query. Prints one
summary line and the study folders; a study the PACS cannot give is one line on stderr (exit 1); a PACS out of
reach is one line (exit 2).""" + PACS_HELP_TAIL


def _query(args: argparse.Namespace) -> int:
    from zsmed.dicom.query import find_studies
    from zsmed.runtime.validate import escape_text

    matches = find_studies(pacs_node(args), patient_id=args.patient_id, patient_name=args.name,
                           timeout=args.timeout)
    for match in matches:
        if args.json:
            print(json.dumps({"study_uid": match.study_uid, "patient_id": match.patient_id,
                              "patient_name": match.patient_name, "date": match.date, "description": match.description,
                              "modalities": match.modalities, "images": match.images, "accession": match.accession}))
        else:
            print(f"{match.study_uid}\t{escape_text(match.line())}")
    if not args.json:
        print(f"{len(matches)} stud{'y' if len(matches) == 1 else 'ies'} found", file=sys.stderr)
    return 0


def _retrieve(args: argparse.Namespace) -> int:
    from zsmed.dicom.query import retrieve_job
    from zsmed.progress import run_with_bar
    from zsmed.runtime.validate import escape_text
    from zsmed.site import load_site_config

    node = pacs_node(args)
    folder = args.into or load_site_config().resolved_receive_folder()
    result = run_with_bar(retrieve_job(node, args.study_uids, folder, timeout=args.timeout), "fetching")
    print(escape_text(result.summary()))
    for study in result.folders:
        print(escape_text(study))
    for problem in result.problems:
        print(f"zsmed: not fetched: {escape_text(problem)}", file=sys.stderr)
    return 1 if result.problems else 0


RECEIVE_HELP = """\
Receive studies sent from the PACS (this PC as a DICOM storage node, C-STORE): the PACS's administrator adds
this workstation as a destination with its address, --port and AE title (--ae; default the settings' AE
title, else ZSMED); a radiologist then sends a study to it from the PACS viewer. Each object is kept as it
was sent in DIR/<patient ID>/<study UID>/<series UID>/<instance UID>.dcm (DIR: --into, else the settings'
receive folder, else the zsmed data folder's 'received'), written whole or not at all; the same instance
sent twice is kept once; a full disk is answered 'out of resources' so the PACS keeps it and retries.
--allow AE (repeatable) accepts only those callers. A C-ECHO is answered.

Runs until Ctrl+C (or --seconds S), printing one line per transfer: how many files, from whom, which
studies. Exit status 0; 2 when it cannot listen (the port taken, or under 1024 without rights)."""


def _receive(args: argparse.Namespace) -> int:
    import threading

    from zsmed.dicom.receiver import Batch
    from zsmed.runtime.validate import escape_text
    from zsmed.site import load_site_config

    lock = threading.Lock()

    def said(batch: Batch) -> None:
        with lock:  # pynetdicom's threads: one line at a time
            print(escape_text(batch.summary()), flush=True)
            for reason in batch.refused:
                print(f"zsmed: refused: {escape_text(reason)}", file=sys.stderr, flush=True)

    listen(receiver_config(args, load_site_config()), said, args.seconds)
    return 0


def _key_images(args: argparse.Namespace) -> int:
    from zsmed.report.key_images import read_key_images, write_key_images
    from zsmed.runtime.validate import escape_text
    from zsmed.site import load_site_config

    for path in args.files:
        if not path.is_file():
            print(f"zsmed: error: {escape_text(path)}: file not found", file=sys.stderr)
            return 2
    reader = args.reader if args.reader is not None else load_site_config().reader
    written = write_key_images(args.files, note=args.note, reader=reader,
                               out_dir=args.out if args.out is not None else args.files[0].parent)
    note = read_key_images(written)
    count = len(note.referenced)
    print(escape_text(f"{count} key image{'' if count == 1 else 's'} ({note.title}) saved as {written}"))
    return 0


def _read_report(args: argparse.Namespace) -> int:
    from zsmed.errors import ZsmedError
    from zsmed.report.read_report import load_report
    from zsmed.runtime.validate import escape_text

    for path in args.files:
        if not path.is_file():
            print(f"zsmed: error: {escape_text(path)}: file not found", file=sys.stderr)
            return 2
    failed = False
    for index, path in enumerate(args.files):
        try:
            report = load_report(path)
            if isinstance(report, bytes):
                data = report
                if args.pdf_out is None:
                    raise ZsmedError("an encapsulated PDF: give --pdf-out DIR to take it out", path=str(path))
                args.pdf_out.mkdir(parents=True, exist_ok=True)
                target = args.pdf_out / f"{path.stem}.pdf"
                target.write_bytes(data)
                print(escape_text(f"{path.name}: PDF written to {target}"), file=sys.stderr)
                continue
            text = report.text()
        except ZsmedError as exc:
            print(f"zsmed: {escape_text(exc)}", file=sys.stderr)
            failed = True
            continue
        except OSError as exc:
            print(f"zsmed: {escape_text(path)}: cannot be read ({exc.strerror or exc})", file=sys.stderr)
            failed = True
            continue
        if index:
            print()
        sys.stdout.write(text)
    return 1 if failed else 0


def _series_files(paths: list[Path]) -> list[Path]:
    """The image files of the one series that ``paths`` (files, folders, a DICOMDIR) hold; ``InputFileError``
    naming the input where they hold none or several."""
    from zsmed.dicom.scan import scan
    from zsmed.errors import InputFileError

    index = scan(paths)
    series = [s for patient in index.patients for study in patient.studies for s in study.series
              if any(i.is_image for i in s.instances)]
    if len(series) != 1:
        found = "no DICOM image" if not series else f"{len(series)} series"
        raise InputFileError(f"{found} found: give the files or the folder of one series (zsmed scan lists them)",
                             path=str(paths[0]))
    return [Path(i.path) for i in series[0].instances if i.is_image]


def _reformat(args: argparse.Namespace) -> int:

    from zsmed.dicom.volume import (
        AnyPlane,
        Oblique,
        curved_through,
        load_volume_job,
        oblique_through,
        plane_count,
        plane_word,
        reformat_plane,
    )
    from zsmed.progress import run_with_bar
    from zsmed.report.reformat_images import ReformatSeries, every_mm, write_reformat_series_job
    from zsmed.runtime.validate import escape_text
    from zsmed.site import load_site_config

    if _said_missing(args.paths):
        return 2
    volume = run_with_bar(load_volume_job(_series_files(args.paths)), "reading the series")
    if args.oblique is not None and args.curved is not None:
        print("zsmed: error: --oblique and --curved: give one of them", file=sys.stderr)
        return 2
    plane: AnyPlane = args.plane
    drawn = args.oblique or args.curved
    if drawn is not None:
        option = "--oblique" if args.oblique is not None else "--curved"
        drawn_on, drawn_slice, points = drawn
        drawn_count = plane_count(volume, drawn_on)
        if not 1 <= drawn_slice <= drawn_count:
            print(f"zsmed: error: {option}: the {drawn_on} plane has slices 1 to {drawn_count}", file=sys.stderr)
            return 2
        where = reformat_plane(volume, drawn_on, drawn_slice - 1)
        patient = [where.patient_point(point) for point in points]
        if args.curved is not None:
            return _save_curved(args, volume, curved_through(volume, patient, where.normal))
        plane = oblique_through(volume, patient[0], patient[1], where.normal)
    count = plane_count(volume, plane)
    if args.slice is not None:
        if not 1 <= args.slice <= count:
            print(f"zsmed: error: --slice {args.slice}: the {plane_word(plane)} plane has slices 1 to {count}",
                  file=sys.stderr)
            return 2
        indices: tuple[int, ...] = (args.slice - 1,)
    else:
        around = plane.through if isinstance(plane, Oblique) else None  # an oblique's slices lined up on the line
        indices = every_mm(volume, plane, args.every, around)
    reader = args.reader if args.reader is not None else load_site_config().reader
    series = ReformatSeries(plane, indices, args.slab, args.mode, args.window, reader)
    written = run_with_bar(write_reformat_series_job(volume, series, args.out), "saving the reformat")
    through = f" (slice {plane.through + 1} through the line)" if isinstance(plane, Oblique) else ""
    print(escape_text(f"{len(written)} {plane_word(plane)} image{'' if len(written) == 1 else 's'}{through} saved "
                      f"as a new series of the study in {written[0].parent}"))
    return 0


Drawn = tuple[str, int, list[tuple[float, float]]]  # a standard plane, its slice (from 1), pixels on it


def _drawn(text: str, what: str, example: str, *, points: int | None) -> Drawn:
    """PLANE,SLICE,C1,R1,C2,R2[,…]: pixels (column, row) of slice SLICE (from 1) of the standard PLANE, as the
    app's tools take them by the mouse; ``points``: how many (None: two or more)."""
    parts = [part.strip() for part in text.split(",")]
    message = f"{text!r}: give the {what} as PLANE,SLICE,{example}"
    count = (len(parts) - 2) // 2
    if (len(parts) % 2 or parts[0] not in ("axial", "coronal", "sagittal")
            or (count != points if points is not None else count < 2)):
        raise argparse.ArgumentTypeError(message)
    try:
        slice_number = int(parts[1])
        values = [float(v) for v in parts[2:]]
    except ValueError:
        raise argparse.ArgumentTypeError(message) from None
    pixels = list(zip(values[::2], values[1::2], strict=True))
    if len(set(pixels)) < 2:
        raise argparse.ArgumentTypeError(f"{text!r}: the {what}'s points are all one point")
    return parts[0], slice_number, pixels


def _oblique(text: str) -> Drawn:
    """--oblique PLANE,SLICE,C1,R1,C2,R2: the line from pixel (C1, R1) to (C2, R2)."""
    return _drawn(text, "line", "C1,R1,C2,R2 (e.g. axial,40,100,200,300,260)", points=2)


def _curved(text: str) -> Drawn:
    """--curved PLANE,SLICE,C1,R1,C2,R2,…: the path through those pixels, in order."""
    return _drawn(text, "path", "C1,R1,C2,R2,… (e.g. axial,40,100,200,250,150,400,260)", points=None)


def _save_curved(args: argparse.Namespace, volume: Any, curved: Any) -> int:
    """The curved reformat along --curved's path, windowed as --window (else the series' own, else fitted to
    its values), saved as a picture of the study (a Secondary Capture: it lies on no plane)."""
    from zsmed.dicom.display import auto_window
    from zsmed.dicom.volume import reformat, windowed
    from zsmed.report.reformat_images import write_curved_capture
    from zsmed.runtime.validate import escape_text
    from zsmed.site import load_site_config

    shown = reformat(volume, curved, 0)
    if args.window is not None:
        centre, width = args.window
    elif volume.windows:
        centre, width = volume.windows[0]
    else:
        low, high = auto_window(volume.voxels)
        centre, width = (low + high) / 2.0, max(high - low, 1.0)
    pixels = windowed(shown, (centre, width), volume.inverted)
    reader = args.reader if args.reader is not None else load_site_config().reader
    written = write_curved_capture(volume, shown, pixels, reader=reader, out_dir=args.out)
    print(escape_text(f"1 curved reformat along a {curved.length_mm:.1f} mm path saved as a picture of the study "
                      f"(a Secondary Capture: it lies on no plane) in {written.parent}"))
    return 0


def _window(text: str) -> tuple[float, float]:
    try:
        centre, width = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give the window as CENTRE,WIDTH (e.g. 40,400)") from None
    if width <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the width must be above 0")
    return centre, width


def _bench_scan(args: argparse.Namespace) -> int:
    from zsmed.dicom.bench import bench_scan, list_files, make_corpus

    if args.make_corpus:
        existing = len(list_files(args.dir)) if args.dir.exists() else 0
        if existing < args.make_corpus:
            print(f"writing a corpus of {args.make_corpus} files to {args.dir} ...", file=sys.stderr)
            make_corpus(args.dir, args.make_corpus)
    if not args.dir.is_dir():
        print(f"zsmed: error: {args.dir} is not a folder (use --make-corpus N to create one)", file=sys.stderr)
        return 2
    _print_bench(bench_scan(args.dir, rss_files=args.rss_files), args.json)
    return 0


def _print_bench(result: dict[str, Any], out: Path | None) -> None:
    """A benchmark's result printed as JSON, and written to ``out`` too unless it is None or '-'."""
    text = json.dumps(result, indent=1)
    if out is not None and str(out) != "-":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)


def _bench_reformat(args: argparse.Namespace) -> int:
    from zsmed.dicom.bench_reformat import bench_reformat, make_volume_series

    if args.make_volume and not (args.dir.is_dir() and any(args.dir.glob("*.dcm"))):
        print(f"writing a series of {args.make_volume} slices to {args.dir} ...", file=sys.stderr)
        make_volume_series(args.dir, args.make_volume, args.size)
    if not args.dir.is_dir() or not any(args.dir.glob("*.dcm")):
        print(f"zsmed: error: {args.dir}: no .dcm series (use --make-volume SLICES to write one)", file=sys.stderr)
        return 2
    _print_bench(bench_reformat(args.dir, repeats=max(args.repeats, 1)), args.json)
    return 0


def register(groups: Any) -> None:
    scan = groups.top.add_parser(
        "scan",
        help="index a folder, DICOMDIR or files into patients/studies/series (header-only)",
        description="Index a folder (recursive), a DICOMDIR or a list of files with header-only reads; "
        "print the Patient > Study > Series tree with counts and problems.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH", help="folder, DICOMDIR or file")
    scan.add_argument("--json", action="store_true", help="print the index as one JSON object")
    scan.add_argument("--indent", action="store_true", help="indent the JSON")
    scan.set_defaults(handler=_scan)

    inspect = groups.top.add_parser(
        "inspect",
        help="header summary and decoded-pixel SHA-256 per DICOM file (JSON Lines with --json)",
        description=INSPECT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inspect.add_argument("files", nargs="+", metavar="FILE", help="DICOM files (folders are expanded)")
    inspect.add_argument("--json", action="store_true", help="JSON Lines output, one object per file")
    inspect.add_argument("--timeout", type=float, default=60.0, help="seconds allowed to decode one file (default 60)")
    inspect.set_defaults(handler=_inspect)

    tags = groups.top.add_parser(
        "tags",
        help="every element of a DICOM file (tag, VR, name, value), like dcmdump; --filter, --json",
        description=TAGS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tags.add_argument("file", type=Path, metavar="FILE", help="a DICOM file")
    tags.add_argument("--filter", metavar="TEXT", default="",
                      help="keep the elements whose tag, name or value contains TEXT (any case)")
    tags.add_argument("--json", action="store_true", help="print one JSON list of rows")
    tags.set_defaults(handler=_tags)

    deidentify = groups.top.add_parser(
        "deidentify",
        help="copy DICOM images de-identified (names, IDs, UIDs, dates replaced; private tags removed) into a folder",
        description=DEIDENTIFY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    deidentify.add_argument("paths", nargs="+", metavar="PATH", help="folder, DICOMDIR or DICOM file")
    deidentify.add_argument("--out", type=Path, required=True, metavar="DIR",
                            help="the folder to write into (made when missing)")
    deidentify.add_argument("--seed", metavar="TEXT", default=None,
                            help="same new identifiers and date offset on every run with the same TEXT")
    deidentify.add_argument("--blank-outside-ultrasound", action="store_true",
                            help="blank everything outside an ultrasound image's regions (its burned-in header)")
    deidentify.add_argument("--blank", action="append", default=[], type=_box, metavar="X,Y,W,H",
                            help="blank this box of pixels (from the top left) on images that may carry "
                                 "burned-in text; may be given more than once")
    deidentify.add_argument("--dicomdir", action="store_true",
                            help="write the de-identified copy as a CD or USB stick's file-set with a DICOMDIR "
                                 "(as zsmed media does), which any DICOM viewer opens")
    deidentify.add_argument("--blank-found-text", action="store_true",
                            help="also blank the words OCR (Tesseract) finds on images that may carry burned-in "
                                 "text, wherever they are (labels typed over an ultrasound scan too)")
    deidentify.set_defaults(handler=_deidentify)

    find_text = groups.top.add_parser(
        "find-text",
        help="look for text burned into the pixels of DICOM images and photos (OCR), e.g. to check an export",
        description=FIND_TEXT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    find_text.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files, photos (PNG / JPEG) or folders")
    find_text.add_argument("--json", action="store_true",
                           help="one JSON object per file: its words with their boxes and confidence")
    find_text.set_defaults(handler=_find_text)

    media = groups.top.add_parser(
        "media", help="write DICOM files as a CD or USB stick for a patient or a referring physician (with a "
                      "DICOMDIR)", description=MEDIA_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    media.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders (a study, a series)")
    media.add_argument("--out", type=Path, required=True, metavar="DIR", help="a new or empty folder")
    media.add_argument("--label", default="ZSMED", metavar="ID",
                       help="the file-set's ID, up to 16 capital letters, digits, spaces or _ (default ZSMED)")
    media.set_defaults(handler=_media)

    send = groups.top.add_parser(
        "send", help="store DICOM files on the PACS (C-STORE): reports, measurements, reformats, any DICOM files",
        description=SEND_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    send.add_argument("paths", nargs="+", metavar="PATH", help="DICOM files or folders")
    add_pacs_arguments(send)
    send.add_argument("--commit", action="store_true",
                      help="ask the PACS to confirm that it keeps what was stored (storage commitment)")
    send.add_argument("--commit-port", type=int, default=None, metavar="PORT",
                      help="where the PACS's answer comes (default: the settings' port for receiving, else 11112)")
    send.add_argument("--commit-wait", type=float, default=60.0, metavar="S",
                      help="seconds to wait for the PACS's answer (default 60)")
    send.set_defaults(handler=_send)

    receive = groups.top.add_parser(
        "receive", help="receive studies sent from the PACS (this PC as a DICOM storage node) into a folder",
        description=RECEIVE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_receive_arguments(receive)
    receive.set_defaults(handler=_receive)

    query = groups.top.add_parser(
        "query", help="list a patient's studies on the PACS (C-FIND), for zsmed retrieve", description=QUERY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    query.add_argument("--patient-id", default="", metavar="ID", help="the patient's ID on the PACS")
    query.add_argument("--name", default="", metavar="NAME", help="the patient's name, DICOM style (DOE^JANE, DOE*)")
    query.add_argument("--json", action="store_true", help="one JSON object per study")
    add_pacs_arguments(query)
    query.set_defaults(handler=_query)

    retrieve = groups.top.add_parser(
        "retrieve", help="fetch studies from the PACS (C-GET) into a folder", description=RETRIEVE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    retrieve.add_argument("study_uids", nargs="+", metavar="STUDY_UID", help="Study Instance UIDs (zsmed query)")
    retrieve.add_argument("--into", type=Path, default=None, metavar="DIR", help="where the studies go")
    add_pacs_arguments(retrieve)
    retrieve.set_defaults(handler=_retrieve)

    echo = groups.top.add_parser(
        "echo", help="check that this PC reaches the PACS (DICOM C-ECHO)", description=ECHO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pacs_arguments(echo)
    echo.set_defaults(handler=_echo)

    key_images = groups.top.add_parser(
        "key-images",
        help="flag DICOM images of one study as key images for the PACS (a DICOM Key Object Selection note)",
        description="Write one key image note (DICOM Key Object Selection, title 'Of Interest') that flags "
        "FILEs, images of one study, with an optional note; PACS viewers list it with the study's key images. "
        "Written next to the first file unless --out names a folder; the app's K and View > Save key images "
        "for the PACS do the same.",
    )
    key_images.add_argument("files", nargs="+", type=Path, metavar="FILE", help="DICOM images of one study")
    key_images.add_argument("--note", default="", metavar="TEXT", help="what the images show (optional)")
    key_images.add_argument("--reader", default=None, metavar="NAME",
                            help="who flags them (default: the reader in this PC's settings)")
    key_images.add_argument("--out", type=Path, default=None, metavar="DIR", help="the folder to write into")
    key_images.set_defaults(handler=_key_images)

    read = groups.top.add_parser(
        "read-report",
        help="print DICOM structured reports as text; take encapsulated PDF reports out of their files",
        description="Print each FILE's structured report (a radiology report, measurements, zsmed's results) as "
        "indented text: title, status and verifier, then its sections and items with units and codes in words. "
        "An encapsulated PDF report is written to --pdf-out DIR as NAME.pdf. The app shows the same when a "
        "report series is opened.",
    )
    read.add_argument("files", nargs="+", type=Path, metavar="FILE", help="DICOM SR or encapsulated PDF files")
    read.add_argument("--pdf-out", type=Path, default=None, metavar="DIR", help="where PDF reports are written")
    read.set_defaults(handler=_read_report)

    reformat = groups.top.add_parser(
        "reformat",
        help="save a CT or MR series' coronal, sagittal, axial or oblique reformats (slabs: MIP / mean / MinIP) as "
             "a new series of its study, for the PACS",
        description="Read the one series PATHs hold (files, a folder) as a volume and save its reformats in "
        "--plane (axial, coronal, sagittal: as the patient lies) as a derived CT / MR series of the same study and "
        "frame of reference, every --every mm (default: every slice) or the one --slice, each image a --slab mm "
        "thick MIP / mean / MinIP if asked; written into a new folder next to the series unless --out names "
        "another. The app's reformat window (Shift+M) saves the same.",
    )
    reformat.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="the series' files or its folder")
    reformat.add_argument("--plane", choices=("axial", "coronal", "sagittal"), default="coronal",
                          help="the plane to save (default coronal)")
    reformat.add_argument("--oblique", type=_oblique, default=None, metavar="PLANE,SLICE,C1,R1,C2,R2",
                          help="an oblique plane instead: the plane through the line from pixel (C1, R1) to (C2, R2) "
                               "of slice SLICE (from 1) of PLANE (axial, coronal, sagittal), square to it, as the "
                               "app's Oblique tool draws it (e.g. axial,40,100,200,300,260); its slices are parallel "
                               "to it across the volume (--plane is then not used)")
    reformat.add_argument("--curved", type=_curved, default=None, metavar="PLANE,SLICE,C1,R1,C2,R2,...",
                          help="a curved reformat instead: the surface through the path of those pixels of slice "
                               "SLICE of PLANE, swept square to it, unrolled (columns mm along the path), as the "
                               "app's Curved tool draws it; saved as a picture of the study (a Secondary Capture)")
    reformat.add_argument("--every", type=float, default=0.0, metavar="MM",
                          help="mm between the images saved (default 0: every slice of the plane)")
    reformat.add_argument("--slice", type=int, default=None, metavar="N", help="save only slice N (from 1)")
    reformat.add_argument("--slab", type=float, default=0.0, metavar="MM", help="slab thickness in mm (default 0)")
    reformat.add_argument("--mode", choices=("mip", "mean", "minip"), default="mip", help="how a slab is made")
    reformat.add_argument("--window", type=_window, default=None, metavar="CENTRE,WIDTH",
                          help="the window saved with the images (modality units, e.g. 40,400)")
    reformat.add_argument("--reader", default=None, metavar="NAME",
                          help="who saves them (default: the reader in this PC's settings)")
    reformat.add_argument("--out", type=Path, default=None, metavar="DIR", help="the folder to write into")
    reformat.set_defaults(handler=_reformat)

    bench = groups.group("bench").add_parser(
        "scan",
        help="header-scan files/s vs a plain pydicom.dcmread loop, and peak RSS of a 10,000-file scan",
        description="Time the header scan and a plain full-read pydicom.dcmread loop over DIR in one run, "
        "and the peak RSS of a scan of --rss-files files in a subprocess.",
    )
    bench.add_argument("dir", type=Path, metavar="DIR")
    bench.add_argument("--json", type=Path, metavar="OUT", help="write the result JSON here")
    bench.add_argument("--make-corpus", type=int, metavar="N", help="first fill DIR with N copies of real test files")
    bench.add_argument("--rss-files", type=int, default=10000, help="files in the RSS scan (default 10000; 0 = skip)")
    bench.set_defaults(handler=_bench_scan)

    bench_reformat = groups.group("bench").add_parser(
        "reformat",
        help="reading a CT series as a volume, its coronal / sagittal / MIP / oblique reformats, saving a series",
        description="Time, in one run on the CT series in DIR: reading it as a volume, a coronal and a sagittal "
        "slice, a 20 mm MIP, an oblique plane and its slice and 10 mm MIP, and saving a coronal series every 5 mm "
        "(medians of --repeats runs; peak RSS). --make-volume SLICES first writes a series of that many 512 x 512 "
        "slices 1 mm apart made from pydicom's real CT slice.",
    )
    bench_reformat.add_argument("dir", type=Path, metavar="DIR")
    bench_reformat.add_argument("--make-volume", type=int, default=0, metavar="SLICES",
                                help="first write a series of SLICES slices into DIR (when it has none)")
    bench_reformat.add_argument("--size", type=int, default=512, metavar="PIXELS", help="rows and columns (512)")
    bench_reformat.add_argument("--repeats", type=int, default=5, help="runs of each timing (median; default 5)")
    bench_reformat.add_argument("--json", type=Path, metavar="OUT", help="write the result JSON here")
    bench_reformat.set_defaults(handler=_bench_reformat)
