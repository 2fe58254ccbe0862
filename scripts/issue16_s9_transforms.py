"""Issue 16, ninth round, one-off probe (kept in git history only; figures in docs/bench/fewshot.md):
ProtoNet on held-out Derm7pt diagnoses (2-way, 300 episodes, 10 queries, seed 7 as `zsmed eval`)
under feature transforms: Tukey power x^b, SimpleShot centring on the HAM10000 base mean, both.

    ZSMED_CACHE_DIR=$PWD/.cache/zsmed python scripts/issue16_s9_transforms.py derm7pt
"""
import sys, numpy as np, torch, torch.nn.functional as F
from pathlib import Path
from zsmed.data.folders import load_class_folder, load_class_folders
from zsmed.encoders import create_image_encoder
from zsmed.features import FeatureCache
from zsmed.fewshot.bank import build_bank
from zsmed.fewshot.sampler import EpisodeSampler
from zsmed.progress import run_with_bar
from zsmed.cli.fewshot_commands import _relabelled
torch.set_num_threads(2)
enc = create_image_encoder("efficientnet-lite0"); cache = FeatureCache()
which = sys.argv[1]
if which == "derm7pt":
    folder = _relabelled(load_class_folder(Path("../shared/data/derm7pt"), None), "diagnosis")
    counts = folder.counts()
    folder = folder.subset(c for c in folder.classes if c not in ("dermatofibroma","vascular lesion") and counts[c] >= 12)
elif which == "hambase":
    folder = load_class_folder(Path("../shared/data/ham10000_fs/base"), None)
bank = run_with_bar(build_bank(folder, enc, cache), "enc")
base = run_with_bar(build_bank(load_class_folders([Path("../shared/data/ham10000_fs/base")]), enc, cache), "base")
X = bank.pooled.float().numpy(); B = base.pooled.float().numpy()
print(which, X.shape, bank.classes, "min", X.min())
groups=[i.group for i in bank.items]
def feats(kind):
    if kind=="raw": return X
    if kind=="cl2n": return X - B.mean(0)
    if kind.startswith("pow"):
        b=float(kind[3:]); Z=np.power(X+1e-6,b); return Z/np.linalg.norm(Z,axis=1,keepdims=True)
    if kind.startswith("cpow"):
        b=float(kind[4:]); Zb=np.power(B+1e-6,b); Zb/=np.linalg.norm(Zb,axis=1,keepdims=True)
        Z=np.power(X+1e-6,b); Z/=np.linalg.norm(Z,axis=1,keepdims=True); return Z-Zb.mean(0)
for k in (1,5):
    eps = EpisodeSampler(bank.labels, groups, ways=2, shots=k, queries=10, seed=7000+k).episodes(300)
    for kind in ("raw","cl2n","pow0.5","pow0.3","cpow0.5","cpow0.3"):
        Z=torch.from_numpy(feats(kind)).float(); accs=[]
        for e in eps:
            s=F.normalize(Z[torch.as_tensor(e.support)],dim=-1); p=F.normalize(s.mean(1),dim=-1)
            q=F.normalize(Z[torch.as_tensor(e.query)],dim=-1)
            accs.append(float(((q@p.t()).argmax(1).numpy()==e.query_labels).mean()))
        a=np.array(accs); print(f"K={k} {kind:8s} {100*a.mean():.1f} ± {196*a.std()/np.sqrt(len(a)):.1f}", flush=True)
