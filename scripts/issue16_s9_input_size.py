"""Issue 16, ninth round, one-off probe (kept in git history only; figures in docs/bench/fewshot.md):
ProtoNet on held-out Derm7pt diagnoses and HAM10000 base pairs with Lite0 at another input size.

    ZSMED_CACHE_DIR=$PWD/.cache/zsmed python scripts/issue16_s9_input_size.py sq288 288 squash
    (and: pad224 224 pad, sq224 224 squash)
"""
import sys, numpy as np, torch, torch.nn.functional as F
from dataclasses import replace
from pathlib import Path
from zsmed.data.folders import load_class_folder
from zsmed.encoders.image import _lite_encoder, load_efficientnet_lite, weights_path, LITE_PREPROCESS
from zsmed.features import FeatureCache, file_sha256
from zsmed.fewshot.bank import build_bank
from zsmed.fewshot.sampler import EpisodeSampler
from zsmed.progress import run_with_bar
from zsmed.cli.fewshot_commands import _relabelled
torch.set_num_threads(2)
cache = FeatureCache()
variant = sys.argv[1]; size=int(sys.argv[2]); keep = sys.argv[3]=="pad"
base_name = sys.argv[4] if len(sys.argv)>4 else "efficientnet-lite0"
p = weights_path(base_name)
enc = _lite_encoder(base_name+"-"+variant, load_efficientnet_lite(base_name, p), file_sha256(p),
                    replace(LITE_PREPROCESS[base_name], size=size, keep_aspect=keep))
d7 = _relabelled(load_class_folder(Path("../shared/data/derm7pt"), None), "diagnosis")
c = d7.counts(); d7 = d7.subset(x for x in d7.classes if x not in ("dermatofibroma","vascular lesion") and c[x] >= 12)
hb = load_class_folder(Path("../shared/data/ham10000_fs/base"), None)
for name, folder in (("derm7pt", d7), ("hambase", hb)):
    bank = run_with_bar(build_bank(folder, enc, cache), "enc")
    Z = bank.pooled.float(); groups=[i.group for i in bank.items]
    out=[]
    for k in (1,5):
        eps = EpisodeSampler(bank.labels, groups, ways=2, shots=k, queries=10, seed=7000+k).episodes(300)
        accs=[]
        for e in eps:
            s=F.normalize(Z[torch.as_tensor(e.support)],dim=-1); pr=F.normalize(s.mean(1),dim=-1)
            q=F.normalize(Z[torch.as_tensor(e.query)],dim=-1)
            accs.append(float(((q@pr.t()).argmax(1).numpy()==e.query_labels).mean()))
        a=np.array(accs); out.append(f"K={k} {100*a.mean():.1f}±{196*a.std()/np.sqrt(len(a)):.1f}")
    print(variant, size, keep, name, *out, flush=True)
