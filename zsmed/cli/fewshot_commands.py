"""``zsmed eval fewshot`` and ``zsmed build fewshot``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zsmed.data.folders import ClassFolder

ALL_METHODS = ("sgps", "sgps-i", "sgps-t", "sgps-guarded", "protonet", "linear", "transfer")
# The shipped generators without their colour branch (zsmed.synth.colour): what build made before it.
COLOUR_OFF_METHODS = {"sgps-nocolour": "sgps", "sgps-guarded-nocolour": "sgps-guarded"}
# Inference-time ablations of the shipped hybrid generator (image + text): part switched off.
ABLATION_METHODS = {
    "sgps-no-film": ("film",),
    "sgps-no-lowrank": ("lowrank",),
    "sgps-no-adapt": ("adapt",),
    "sgps-no-genhead": ("head",),
}


def register(groups: object) -> None:
    ev = groups.group("eval").add_parser(  # type: ignore[attr-defined]
        "fewshot", help="few-shot benchmark on a labelled folder (paired episodes, all methods)")
    ev.add_argument("data_dir", type=Path, help="folder of class subfolders (optionally metadata.csv)")
    ev.add_argument("--ways", type=int, default=2)
    ev.add_argument("--shots", type=int, nargs="+", default=[1, 5])
    ev.add_argument("--queries", type=int, default=15)
    ev.add_argument("--episodes", type=int, default=600)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--methods", default="sgps,sgps-i,sgps-t,protonet,linear,transfer",
                    help=f"comma-separated, from {', '.join(ALL_METHODS)}; ablations of the hybrid "
                         f"generator: {', '.join(ABLATION_METHODS)}")
    ev.add_argument("--classes", nargs="+", help="only these classes of DATA_DIR")
    ev.add_argument("--label-column", metavar="COLUMN",
                    help="label images by this metadata.csv column instead of their folder (e.g. Derm7pt's diagnosis)")
    ev.add_argument("--min-images", type=int, default=0, help="leave out classes with fewer images")
    ev.add_argument("--exclude-classes", nargs="+", default=[], metavar="CLASS",
                    help="leave out these classes (after --label-column / --merge)")
    ev.add_argument("--merge", action="append", default=[], metavar="NEW=A,B",
                    help="evaluate classes A and B as one class NEW (e.g. PNEUMONIA=BACTERIA,VIRUS)")
    ev.add_argument("--exclude-listed", type=Path, action="append", default=[], metavar="DATA_LIST",
                    help="leave out every image whose SHA-256 is in this checkpoint data list (images the "
                         "generator was meta-trained or validated on)")
    ev.add_argument("--only-validation-of", type=Path, metavar="DATA_LIST",
                    help="keep only the images this checkpoint data list marks as validation (split 'val'): "
                         "choosing between generators on their held-out classes and patients, never the dev split")
    ev.add_argument("--descriptions", type=Path, help="YAML descriptions (default: the shipped ones)")
    ev.add_argument("--base", type=Path, action="append", help="base-class folder for the transfer baseline")
    ev.add_argument("--checkpoint", type=Path, help="SGPS checkpoint (default: the shipped one)")
    ev.add_argument("--encoder", metavar="NAME",
                    help="image encoder of the baselines (default: the checkpoint's, else the default one); "
                         "each generator always runs on the encoder it was meta-trained on")
    ev.add_argument("--colour-stats", type=Path, metavar="FILE",
                    help="colour statistics (scripts/fit_colour_stats.py) for the generators' colour branch, "
                         "instead of those beside their checkpoints; -nocolour methods run without")
    ev.add_argument("--extra-checkpoint", action="append", default=[], metavar="NAME=PATH",
                    help="also evaluate this generator as method NAME (image+text), e.g. for ablations")
    ev.add_argument("--paired-against", metavar="METHOD",
                    help="also report each method's accuracy difference to METHOD on the same episodes, with "
                         "its 95 %% CI (any evaluated method, --extra-checkpoint or --ensemble name)")
    ev.add_argument("--ensemble", action="append", default=[], metavar="NAME=A+B",
                    help="also evaluate the mean of the class probabilities of methods A and B (any evaluated "
                         "method or --extra-checkpoint name; each runs once per episode), e.g. sgps+protonet")
    ev.add_argument("--json", type=Path, help="write results here")
    ev.set_defaults(handler=_eval_fewshot)

    bd = groups.group("build").add_parser(  # type: ignore[attr-defined]
        "fewshot", help="synthesise a classifier from a few images per class (SGPS)")
    bd.add_argument("--support", type=Path, required=True, help="folder with one subfolder of images per class")
    bd.add_argument("--descriptions", type=Path, help="YAML class descriptions (default: the shipped ones)")
    bd.add_argument("--no-text", action="store_true", help="ignore descriptions (image-only)")
    bd.add_argument("--checkpoint", type=Path, help="SGPS checkpoint (default: the shipped one)")
    bd.add_argument("--out", type=Path, required=True, help="model file to write (.zsm)")
    bd.add_argument("--colour-stats", type=Path, metavar="FILE",
                    help="colour statistics (scripts/fit_colour_stats.py) for the generator's colour branch")
    bd.add_argument("--no-guard", action="store_true",
                    help="keep the generated classifier even where the guard would fall back to ProtoNet")
    bd.set_defaults(handler=_build_fewshot)


def _with_ensembles(chosen: list[Any], specs: list[str]) -> list[Any]:
    """``chosen`` plus one ``Ensemble`` per ``NAME=A+B`` spec, its members' predictions kept per
    episode (``KeptPredictions``) so that each runs once."""
    from zsmed.errors import ConfigError
    from zsmed.fewshot.evaluate import Ensemble, KeptPredictions

    if not specs:
        return chosen
    kept = {m.name: KeptPredictions(m) for m in chosen}
    ensembles: list[Ensemble] = []
    for spec in specs:
        name, sep, rest = spec.partition("=")
        members = [m.strip() for m in rest.split("+") if m.strip()]
        if not sep or not name.strip() or len(members) < 2:
            raise ConfigError(f"--ensemble wants NAME=A+B (two or more evaluated methods), got '{spec}'")
        unknown = [m for m in members if m not in kept]
        if unknown:
            raise ConfigError(f"--ensemble {name}: {', '.join(unknown)} not evaluated in this run "
                              f"(evaluated: {', '.join(kept)})")
        if name.strip() in kept or name.strip() in {e.name for e in ensembles}:
            raise ConfigError(f"--ensemble: the name '{name.strip()}' is already taken")
        ensembles.append(Ensemble(name.strip(), [kept[m] for m in members]))
    return [*kept.values(), *ensembles]


def _eval_fewshot(args: argparse.Namespace) -> int:
    import torch

    from zsmed.data.folders import load_class_folder, load_class_folders
    from zsmed.encoders import create_image_encoder, create_text_encoder
    from zsmed.errors import ConfigError
    from zsmed.features import FeatureCache
    from zsmed.fewshot.bank import build_bank, lite_backbone
    from zsmed.fewshot.baselines import LinearProbe, ProtoNet, Transfer, TransferConfig, load_or_train_transfer
    from zsmed.fewshot.evaluate import FewShotMethod, add_paired_differences, format_table, run_benchmark
    from zsmed.fewshot.sampler import EpisodeSampler
    from zsmed.paths import user_cache_dir
    from zsmed.progress import run_with_bar
    from zsmed.synth.checkpoint import default_checkpoint_paths, load_generator
    from zsmed.synth.data import description_embeddings
    from zsmed.synth.synthesize import SGPSMethod

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    known = (*ALL_METHODS, *ABLATION_METHODS, *COLOUR_OFF_METHODS)
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(known)}")
    extra: list[tuple[str, Path]] = []
    for spec in args.extra_checkpoint:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--extra-checkpoint wants NAME=PATH, got '{spec}'")
        extra.append((name, Path(path)))
    # Checked before any image is encoded: every evaluated method, extra generator and ensemble
    # is named by the arguments alone.
    evaluated = [*methods, *(name for name, _ in extra), *(s.partition("=")[0].strip() for s in args.ensemble)]
    if args.paired_against and args.paired_against not in evaluated:
        raise ConfigError(f"--paired-against '{args.paired_against}' is not an evaluated method "
                          f"({', '.join(evaluated)})")
    if args.encoder:
        encoder_name = args.encoder
    elif args.checkpoint:
        from zsmed.synth.checkpoint import read_checkpoint_config

        encoder_name = read_checkpoint_config(args.checkpoint)[0].encoder
    else:
        from zsmed.encoders import DEFAULT_IMAGE_ENCODER as encoder_name
    encoder = create_image_encoder(encoder_name)
    cache = FeatureCache()
    folder = _merged_folder(_relabelled(load_class_folder(args.data_dir, args.classes), args.label_column),
                            args.merge)
    if args.exclude_classes or args.min_images:
        counts = folder.counts()
        folder = folder.subset(c for c in folder.classes
                               if c not in args.exclude_classes and counts[c] >= args.min_images)
        if not folder.classes:
            from zsmed.errors import DatasetError

            largest = max(counts.values(), default=0)
            raise DatasetError(f"no class is left after --exclude-classes / --min-images {args.min_images} "
                               f"(the largest class has {largest} images)", path=args.data_dir)
    if args.exclude_listed:
        folder = _without_listed(folder, args.exclude_listed)
    if args.only_validation_of:
        folder = _only_listed(folder, args.only_validation_of, split="val")
    if args.episodes < 1:  # a figure over no episodes would be printed as nan
        from zsmed.errors import DatasetError

        raise DatasetError(f"--episodes must be at least 1, not {args.episodes}")
    bank = run_with_bar(build_bank(folder, encoder, cache), "encoding")
    for path, why in bank.failures:
        print(f"skipped {path}: {why}", file=sys.stderr)
    groups = [item.group for item in bank.items]
    episodes = {
        k: EpisodeSampler(bank.labels, groups, ways=args.ways, shots=k, queries=args.queries,
                          seed=args.seed * 1000 + k).episodes(args.episodes)
        for k in args.shots
    }
    chosen: list[FewShotMethod] = []
    sgps_needed = any(m.startswith("sgps") for m in methods) or extra
    text: dict = {}
    if sgps_needed:
        sources = [args.descriptions] if args.descriptions else None
        text = description_embeddings(bank.classes, create_text_encoder(), sources)
        missing = [c for c in bank.classes if c not in text]
        if missing:
            print(f"note: no description for {', '.join(missing)}: SGPS uses images only for them",
                  file=sys.stderr)
    # Without --checkpoint the SGPS methods are what build ships: the shipped per-domain generators,
    # each episode routed to one by its support set (RoutedMethod, as synthesize does).
    checkpoints = [args.checkpoint] if args.checkpoint else default_checkpoint_paths()
    generators: dict[Path, Any] = {}
    # Each generator runs on the encoder it was meta-trained on (as build does); --encoder names
    # the baselines' encoder. The same images are encoded once per encoder.
    banks = {encoder.spec.name: bank}
    encoders = {encoder.spec.name: encoder}

    generator_encoders: dict[Path, str] = {}

    def encoder_of(path: Path) -> str:
        from zsmed.synth.checkpoint import read_checkpoint_config

        if path not in generator_encoders:  # asked for each method and for routing: read the file once
            generator_encoders[path] = read_checkpoint_config(path)[0].encoder
        return generator_encoders[path]

    def encoder_on(name: str) -> Any:
        if name not in encoders:
            encoders[name] = create_image_encoder(name)
        return encoders[name]

    def bank_on(name: str) -> Any:
        if name not in banks:
            other = run_with_bar(build_bank(folder, encoder_on(name), cache), f"encoding ({name})")
            if [(i.path, i.label) for i in other.items] != [(i.path, i.label) for i in bank.items]:
                raise ConfigError(f"{name} and {encoder.spec.name} read different images of {args.data_dir}")
            banks[name] = other
        return banks[name]

    def generator_of(path: Path) -> Any:
        if path not in generators:
            generators[path] = load_generator(path, encoder=encoder_on(encoder_of(path)))
        return generators[path]

    colours: dict[Path, Any] = {}

    def colour_of(m: str, path: Path, own: Any) -> Any:
        """The generator's colour branch over the bank (None without colour statistics, or for a -nocolour
        method); the images' colour numbers are computed once, for the episodes that need them."""
        from zsmed.synth.colour import BankColour, read_colour_stats, read_colour_stats_file

        if m in COLOUR_OFF_METHODS:
            return None
        if path not in colours:
            stats = read_colour_stats_file(args.colour_stats) if args.colour_stats else read_colour_stats(path)
            colours[path] = BankColour(stats, [Path(i.path) for i in own.items]) if stats is not None else None
        return colours[path]

    def sgps_method(m: str, path: Path) -> FewShotMethod:
        from zsmed.synth.guard import read_domain_check, read_tie_rule
        from zsmed.synth.synthesize import GuardedSGPSMethod

        own = bank_on(encoder_of(path))
        # text-only episodes measure the descriptions alone: no colour of the support images joins them
        colour = colour_of(m, path, own) if m != "sgps-t" else None
        name, m = m, COLOUR_OFF_METHODS.get(m, m)
        if m == "sgps-guarded":
            from zsmed.synth.fallback import fallback_stage_path, load_stage

            stage_path = fallback_stage_path(path)
            stage = (load_stage(stage_path, lite_backbone(encoder_on(encoder_of(path))))
                     if stage_path is not None else None)
            return GuardedSGPSMethod(name, generator_of(path), own, text, read_domain_check(path),
                                     ties=read_tie_rule(path), fallback_stage=stage, colour=colour)
        modality = {"sgps-i": "i", "sgps-t": "t"}.get(m, "it")
        return SGPSMethod(name, generator_of(path), own, text, modality, ABLATION_METHODS.get(m, ()), colour)

    for m in methods:
        if m.startswith("sgps") and len(checkpoints) == 1:
            chosen.append(sgps_method(m, checkpoints[0]))
        elif m.startswith("sgps"):
            from zsmed.synth.guard import read_domain_check
            from zsmed.synth.synthesize import RoutedMethod

            chosen.append(RoutedMethod(m, [sgps_method(m, p) for p in checkpoints],
                                       [read_domain_check(p) for p in checkpoints], [p.stem for p in checkpoints],
                                       [bank_on(encoder_of(p)).pooled.numpy() for p in checkpoints]))
        elif m == "protonet":
            chosen.append(ProtoNet(bank))
        elif m == "linear":
            chosen.append(LinearProbe(bank))
        elif m == "transfer":
            if not args.base:
                raise ConfigError("the transfer baseline needs --base DIR (base-class folder)")
            base = run_with_bar(build_bank(load_class_folders(args.base), encoder, cache), "encoding base")
            overlap = set(base.classes) & set(bank.classes)
            if overlap:
                raise ConfigError(f"--base shares class(es) {', '.join(sorted(overlap))} with DATA_DIR")
            stage = load_or_train_transfer(lite_backbone(encoder), base, TransferConfig(), user_cache_dir())
            chosen.append(Transfer(bank, stage))
    for name, path in extra:
        chosen.append(SGPSMethod(name, generator_of(path), bank_on(encoder_of(path)), text, "it"))

    chosen = _with_ensembles(chosen, args.ensemble)

    def show(result: object) -> None:
        r = result  # MethodResult
        print(f"{r.method:<22} K={r.shots}  acc {100 * r.accuracy:5.1f} ± {100 * r.ci95:.1f} %  "  # type: ignore[attr-defined]
              f"AUC {r.auc:.3f}  {r.seconds_per_episode * 1000:.1f} ms/episode", flush=True)  # type: ignore[attr-defined]
        guard = r.extra  # type: ignore[attr-defined]
        if "fired_rate" in guard:
            print(f"{'':<22} guard fired in {100 * guard['fired_rate']:.1f} % of episodes (domain check "
                  f"{guard['fired_domain']}, leave-one-out {guard['fired_loo']}, of {guard['episodes']})"
                  + ("" if guard["domain_stats"] else "; the checkpoint has no domain statistics"), flush=True)
        if "routed" in guard:
            print(f"{'':<22} generators: " + ", ".join(f"{name} {n}" for name, n in guard["routed"].items()),
                  flush=True)
        if guard.get("colour_episodes"):
            print(f"{'':<22} colour branch used in {guard['colour_used']} of {guard['colour_episodes']} episodes",
                  flush=True)

    start = time.perf_counter()
    results = run_with_bar(run_benchmark(chosen, episodes, on_result=show), "episodes")
    if args.paired_against:
        add_paired_differences(results, args.paired_against)
    print()
    print(format_table(results))
    if args.json:
        payload = {
            "data_dir": str(args.data_dir),
            "classes": bank.classes,
            "counts": {c: len(bank.indices_of(c)) for c in bank.classes},
            "group_column": folder.group_column,
            "ways": args.ways,
            "shots": args.shots,
            "queries": args.queries,
            "episodes": args.episodes,
            "seed": args.seed,
            "encoder": encoder.spec.name,
            "generator_encoders": {str(p): encoder_of(p) for p in generators},
            "checkpoint": [str(p) for p in checkpoints],
            "merge": args.merge,
            "label_column": args.label_column,
            "min_images": args.min_images,
            "exclude_classes": args.exclude_classes,
            "exclude_listed": [str(p) for p in args.exclude_listed],
            "descriptions": sorted(text),
            "skipped": [[str(p), why] for p, why in bank.failures],
            "wall_seconds": time.perf_counter() - start,
            "results": [r.to_dict() for r in results],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


def _build_fewshot(args: argparse.Namespace) -> int:
    import resource

    import torch

    from zsmed.classifier import save_classifier
    from zsmed.features import FeatureCache
    from zsmed.synth.synthesize import synthesize

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 4)))
    start = time.perf_counter()
    _print_support_checks(Path(args.support))
    details: dict = {}
    clf = synthesize(args.support, args.descriptions, checkpoint=args.checkpoint, use_text=not args.no_text,
                     cache=FeatureCache(), guard=not args.no_guard, details=details,
                     colour_stats=args.colour_stats)
    if not clf.card.input_kinds:  # the kinds of its support images, for the reader's check before running
        from zsmed.imageio import candidate_images
        from zsmed.runtime.input_kinds import input_kinds_of

        clf.with_card(input_kinds=tuple(input_kinds_of(candidate_images(Path(args.support)))))
    save_classifier(clf, args.out)
    elapsed = time.perf_counter() - start
    for path, why in details.get("skipped", []):
        print(f"warning: skipped {path}: {why}", file=sys.stderr)
    for message in clf.card.extra.get("warnings", []):
        print(f"warning: {message}", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in clf.card.support_counts.items())
    print(f"classifier: {len(clf.class_names)} classes ({counts}), method {clf.card.method}")
    generator = clf.card.extra.get("generator") or {}
    routing = generator.get("routing") or {}
    if routing:
        print(f"generator: {routing['chosen']} (of {', '.join(routing['candidates'])}: the one whose meta-training "
              "images this support set is most like)")
    guard = clf.card.extra.get("guard") or {}
    if guard:
        kind = "generator (SGPS)" if guard["classifier"] == "sgps" else "ProtoNet (the generator is not used)"
        off = "" if guard.get("enabled", True) else " [guard off: --no-guard]"
        print(f"guard: {kind}: {guard['reason']}{off}")
    colour = clf.card.extra.get("colour") or {}
    if colour:
        print(f"colour: {colour['reason']}")
    loo = clf.card.metrics.get("loo_accuracy")
    if loo is not None:
        n, total = clf.card.metrics.get("loo_images"), sum(clf.card.support_counts.values())
        held = f"{n} support images" if n == total else f"{n} of the {total} support images, spread over the classes"
        print(f"leave-one-out estimate: {100 * loo:.1f} % of {held}")
    else:
        print("leave-one-out estimate: needs at least 2 images per class")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"wrote {args.out} in {elapsed:.1f} s (peak memory {peak_mb:.0f} MB)")
    return 0


def _print_support_checks(support: Path) -> None:
    """The builder's checks of the support set (``zsmed.synth.builder.check_support``), as the app
    shows them: warnings and notes here (what stops a build is refused by the build itself, in
    its own words)."""
    from zsmed.data.folders import load_class_folder
    from zsmed.errors import ZsmedError
    from zsmed.synth.builder import ERROR, check_support

    try:
        folder = load_class_folder(support)
    except ZsmedError:
        return  # the build names the problem
    classes: dict[str, list[Path]] = {}
    for item in folder.items:
        classes.setdefault(item.label, []).append(Path(item.path))
    for finding in check_support(classes):
        if finding.severity == ERROR:
            continue
        names = ", ".join(p.name for p in finding.images[:3]) + (" …" if len(finding.images) > 3 else "")
        print(f"{finding.severity}: {finding.message}" + (f" ({names})" if names else ""), file=sys.stderr)


def _merged_folder(folder: ClassFolder, merges: list[str]) -> ClassFolder:
    """Relabel classes per ``NEW=A,B`` (e.g. PNEUMONIA=BACTERIA,VIRUS)."""
    from zsmed.data.folders import ClassFolder, LabeledItem
    from zsmed.errors import ConfigError

    mapping: dict[str, str] = {}
    for spec in merges:
        new, sep, olds = spec.partition("=")
        parts = [o.strip() for o in olds.split(",") if o.strip()]
        if not sep or not new or not parts:
            raise ConfigError(f"--merge wants NEW=A,B, got '{spec}'")
        unknown = [o for o in parts if o not in folder.classes]
        if unknown:
            raise ConfigError(f"--merge: no class {', '.join(unknown)} in {folder.root}")
        mapping.update({o: new for o in parts})
    items = [LabeledItem(it.path, mapping.get(it.label, it.label), it.group, it.meta) for it in folder.items]
    return ClassFolder(folder.root, items, folder.group_column)


def _listed_sha256(path: Path, split: str | None = None) -> set[str]:
    """The ``sha256`` column of a checkpoint data list (only the rows of ``split`` when given)."""
    import csv

    from zsmed.errors import InputFileError

    try:
        with path.open(newline="") as handle:
            return {row["sha256"] for row in csv.DictReader(handle) if split is None or row["split"] == split}
    except (OSError, KeyError) as exc:
        raise InputFileError(f"cannot read a data list with split and sha256 columns ({exc})", path=path) from exc


def _only_listed(folder: ClassFolder, data_list: Path, split: str) -> ClassFolder:
    """Keep only the images a data list marks as ``split``."""
    from zsmed.data.folders import ClassFolder
    from zsmed.errors import DatasetError
    from zsmed.features import file_sha256

    listed = _listed_sha256(data_list, split)
    items = [it for it in folder.items if file_sha256(it.path) in listed]
    if not items:
        raise DatasetError(f"no image of the folder is listed as '{split}' in {data_list.name}", path=folder.root)
    print(f"kept the {len(items)} image(s) listed as '{split}' in {data_list}", file=sys.stderr)
    return ClassFolder(folder.root, items, folder.group_column)


def _without_listed(folder: ClassFolder, lists: list[Path]) -> ClassFolder:
    """Drop images whose SHA-256 is in any of the data lists (``sha256`` column)."""
    from zsmed.data.folders import ClassFolder
    from zsmed.features import file_sha256

    listed: set[str] = set()
    for path in lists:
        listed |= _listed_sha256(path)
    items = [it for it in folder.items if file_sha256(it.path) not in listed]
    print(f"left out {len(folder.items) - len(items)} image(s) listed in {', '.join(map(str, lists))}",
          file=sys.stderr)
    return ClassFolder(folder.root, items, folder.group_column)


def _relabelled(folder: ClassFolder, column: str | None) -> ClassFolder:
    """Label every image by a metadata column (e.g. Derm7pt's fine-grained ``diagnosis``)."""
    from zsmed.data.folders import ClassFolder, LabeledItem
    from zsmed.errors import ConfigError

    if not column:
        return folder
    missing = [it.path.name for it in folder.items if not it.meta.get(column)]
    if missing:
        raise ConfigError(f"--label-column: no '{column}' in metadata.csv for {len(missing)} image(s), e.g. "
                          f"{missing[0]}")
    items = [LabeledItem(it.path, it.meta[column], it.group, it.meta) for it in folder.items]
    return ClassFolder(folder.root, items, folder.group_column)
