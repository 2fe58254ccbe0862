#!/usr/bin/env python
"""Fine-tune the last blocks of EfficientNet-Lite on the base classes of one domain (a tuned encoder).

    python scripts/train_encoder_tail.py --data-root ../shared/data \
        --split-from resources/checkpoints/sgps-cxr_efficientnet-lite0.data_list.csv \
        --views hflip,zoom,contrast --out resources/checkpoints/encoder-cxr_efficientnet-lite0

Fits on the images a generator's data list marks ``train`` (so the tuned encoder never sees that
generator's validation patients or classes, nor anything the data list leaves out, such as the
reserved dev patients). Writes OUT.safetensors (the tuned entries under the backbone's names),
OUT.json (config, base encoder, classes, training log, the exact command) and OUT.data_list.csv
(every image it was fitted on, with its SHA-256). ``zsmed.encoders.TUNED_ENCODERS`` names the file.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    p.add_argument("--data-root", type=Path, required=True)
    p.add_argument("--split-from", type=Path, required=True, metavar="DATA_LIST",
                   help="fit on the rows of this checkpoint data list whose split is 'train'")
    p.add_argument("--encoder", default="efficientnet-lite0", help="base encoder")
    p.add_argument("--views", default="", help="augmented views of every image added to the fit (zsmed.fewshot.views)")
    p.add_argument("--start-block", type=int, default=11)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="output path without suffix")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from safetensors.torch import save_file

    from zsmed.encoders import create_image_encoder
    from zsmed.errors import DatasetError
    from zsmed.features import file_sha256
    from zsmed.fewshot.bank import lite_backbone
    from zsmed.fewshot.views import parse_views
    from zsmed.synth.encoder_tail import TailConfig, file_block_inputs, train_tail

    config = TailConfig(start_block=args.start_block, epochs=args.epochs, lr=args.lr, seed=args.seed)
    views = parse_views(args.views)
    encoder = create_image_encoder(args.encoder)
    backbone = lite_backbone(encoder)
    n_blocks = len(backbone._blocks)
    if not 0 <= config.start_block <= n_blocks:
        raise DatasetError(f"--start-block must be between 0 and {n_blocks}")
    with args.split_from.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["split"] == "train"]
    if not rows:
        raise DatasetError("no row marked 'train'", path=args.split_from)
    paths = [args.data_root / r["file"] for r in rows]
    changed = [p for p, r in zip(paths, rows, strict=True) if file_sha256(p) != r["sha256"]]
    if changed:  # a data list is a promise about content, not just names
        raise DatasetError(f"{len(changed)} image(s) differ from the data list, e.g. {changed[0]}",
                           path=args.split_from)
    labels = [r["label"] for r in rows]
    inputs = file_block_inputs(backbone, paths, encoder.preprocess, config.start_block, views)
    log = []
    tail = None
    for out in train_tail(backbone, inputs, labels * (1 + len(views)), config):
        if isinstance(out, str):
            print(out, flush=True)
            log.append(out)
        else:
            tail = out
    assert tail is not None
    target = args.out.with_suffix(".safetensors")
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(tail.backbone_state(), str(target))
    info = {"kind": "encoder_tail", "base_encoder": encoder.spec.name, "base_sha256": encoder.spec.weights_sha256,
            "config": asdict(config), "views": list(views), "classes": sorted(set(labels)), "images": len(rows),
            "split_from": args.split_from.name, "train_log": log,
            "command": f"python scripts/train_encoder_tail.py {' '.join(sys.argv[1:] if argv is None else argv)}"}
    target.with_suffix(".json").write_text(json.dumps(info, indent=2, sort_keys=True))
    with target.parent.joinpath(f"{args.out.name}.data_list.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"encoder tail: blocks {config.start_block}.. of {encoder.spec.name}, {len(rows)} images "
          f"({len(views)} views), classes {', '.join(info['classes'])} -> {target}", flush=True)
    return 0


if __name__ == "__main__":
    from zsmed.errors import ZsmedError

    try:
        raise SystemExit(main())
    except ZsmedError as exc:  # a bad data list or image: one line, no traceback
        raise SystemExit(f"train_encoder_tail: {exc}") from None
