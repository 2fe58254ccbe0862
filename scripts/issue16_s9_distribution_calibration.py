"""Issue 16, ninth round, one-off probe (kept in git history only; figures in docs/bench/fewshot.md):
ProtoNet, logistic regression and distribution calibration (Yang et al. 2021) on Tukey-transformed
features, held-out Derm7pt diagnoses, the first 100 episodes of `zsmed eval`'s seed-7 samplers.

    ZSMED_CACHE_DIR=$PWD/.cache/zsmed python scripts/issue16_s9_distribution_calibration.py 100
"""
import sys, numpy as np, torch, torch.nn.functional as F
from pathlib import Path
from sklearn.linear_model import LogisticRegression
from zsmed.data.folders import load_class_folder, load_class_folders
from zsmed.encoders import create_image_encoder
from zsmed.features import FeatureCache
from zsmed.fewshot.bank import build_bank
from zsmed.fewshot.sampler import EpisodeSampler
from zsmed.progress import run_job
from zsmed.cli.fewshot_commands import _relabelled
torch.set_num_threads(1)
enc = create_image_encoder("efficientnet-lite0"); cache = FeatureCache()
d7 = _relabelled(load_class_folder(Path("../shared/data/derm7pt"), None), "diagnosis")
c = d7.counts(); d7 = d7.subset(x for x in d7.classes if x not in ("dermatofibroma","vascular lesion") and c[x] >= 12)
bank = run_job(build_bank(d7, enc, cache))
base = run_job(build_bank(load_class_folders([Path("../shared/data/ham10000_fs/base")]), enc, cache))
T = lambda z: np.power(np.maximum(z, 0) + 1e-6, 0.5)
X = T(bank.pooled.float().numpy()); B = T(base.pooled.float().numpy())
bl = np.array(base.labels)
means = np.stack([B[bl == k].mean(0) for k in base.classes]); covs = np.stack([np.cov(B[bl == k].T) for k in base.classes])
groups = [i.group for i in bank.items]
rng = np.random.default_rng(0)
def dc(sup, k=2, alpha=0.21, n=200):
    feats, labs = [], []
    for ci, s in enumerate(sup):
        for x in s:
            d = np.linalg.norm(means - x, axis=1); idx = np.argsort(d)[:k]
            mu = np.concatenate([means[idx], x[None]]).mean(0); cov = covs[idx].mean(0) + alpha
            smp = rng.multivariate_normal(mu, cov, size=n, method="cholesky") if False else mu + rng.standard_normal((n, len(mu))) @ np.linalg.cholesky(cov + 1e-3*np.eye(len(mu))).T
            feats += [smp, x[None]]; labs += [ci] * (n + 1)
    return np.concatenate(feats), np.array(labs)
for K in (1, 5):
    eps = EpisodeSampler(bank.labels, groups, ways=2, shots=K, queries=10, seed=7000 + K).episodes(int(sys.argv[1]))
    acc = {"proto": [], "lr": [], "dc": []}
    for e in eps:
        sup = X[e.support]; q = X[e.query]; y = e.query_labels
        P = sup.mean(1); P /= np.linalg.norm(P, axis=1, keepdims=True); qn = q / np.linalg.norm(q, axis=1, keepdims=True)
        acc["proto"].append(((qn @ P.T).argmax(1) == y).mean())
        xs = sup.reshape(-1, sup.shape[-1]); ys = np.repeat(np.arange(2), K)
        acc["lr"].append((LogisticRegression(max_iter=1000).fit(xs, ys).predict(q) == y).mean())
        fx, fy = dc(sup)
        acc["dc"].append((LogisticRegression(max_iter=1000).fit(fx, fy).predict(q) == y).mean())
    print(K, {m: f"{100*np.mean(v):.1f}±{196*np.std(v)/np.sqrt(len(v)):.1f}" for m, v in acc.items()}, flush=True)
