#!/usr/bin/env python3
"""The unfamiliar-flow detectors compared before choosing training/novelty.py's isolation forest: HBOS (10, 20, 40
bins), isolation forest, distance to the 1st and 5th nearest training row, each fitted on benign rows or all
rows. Selection is by the day-grouped cross-validation columns only (share of attacks predicted attack or flagged,
at the threshold where 10% of out-of-fold benign rows are flagged; or at the threshold maximising caught minus
benign flagged); the holdout columns are reported beside them, never used to choose.

  /usr/bin/python3 training/novelty_candidates.py ../shared/data/cic-ids2018-train.csv \\
      /tmp/unseen-days/cic-ids2018-xgb ../shared/holdout/cic-ids2018-holdout.csv
"""
import sys, json, os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np, pandas as pd, xgboost as xgb
from sklearn.model_selection import GroupKFold
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors
import train as T

meta = json.load(open(os.path.join(sys.argv[2], 'metadata.json')))
features = meta['features']
p = meta['training']['params']
params = {k: p[k] for k in T.GRID}
frame = T.read_flows(sys.argv[1])
days = T.capture_day(frame)
keep = ~np.isin(days, meta['training']['excluded_days'])
frame = frame[keep].reset_index(drop=True); days = days[keep]
y = (frame.label.str.strip().str.lower() != 'benign').astype(int).values
x = T.preprocess(frame, features)
hold = pd.read_csv(sys.argv[3])
hx = T.preprocess(hold, features); hy = (hold.label != 'Benign').astype(int).values; hl = hold.label.values


def logt(x):
    a = x.values.astype('float64')
    return np.sign(a) * np.log1p(np.abs(a))


class HBOS:
    def __init__(self, bins=20, alpha=None):
        self.bins = bins
    def fit(self, x):
        a = logt(x); n = len(a); self.tabs = []
        for j in range(a.shape[1]):
            col = a[:, j]; ok = ~np.isnan(col)
            lo, hi = (np.nanmin(col), np.nanmax(col)) if ok.any() else (0, 0)
            if hi <= lo: hi = lo + 1e-9
            edges = np.linspace(lo, hi, self.bins + 1)
            cnt, _ = np.histogram(col[ok], edges)
            p = (cnt + 0.5) / (n + 0.5 * (self.bins + 1))  # smoothed
            pn = ((~ok).sum() + 0.5) / (n + 0.5 * (self.bins + 1))
            pout = 0.5 / (n + 0.5 * (self.bins + 1))
            self.tabs.append((edges, -np.log(p), -np.log(pn), -np.log(pout)))
        return self
    def score(self, x):
        a = logt(x); s = np.zeros(len(a))
        for j, (edges, nl, nln, nlo) in enumerate(self.tabs):
            col = a[:, j]
            idx = np.searchsorted(edges, col, side='right') - 1
            idx[col == edges[-1]] = len(nl) - 1
            v = np.where((idx >= 0) & (idx < len(nl)), nl[np.clip(idx, 0, len(nl) - 1)], nlo)
            v = np.where(np.isnan(col), nln, v)
            s += v
        return s


class IF:
    def __init__(self, n=100, samples=256): self.n, self.samples = n, samples
    def fit(self, x):
        a = np.nan_to_num(logt(x), nan=-5)
        self.m = IsolationForest(n_estimators=self.n, random_state=20180214, max_samples=min(self.samples, len(a))).fit(a); return self
    def score(self, x):
        return -self.m.score_samples(np.nan_to_num(logt(x), nan=-5))


class KNN:
    def __init__(self, k=1): self.k = k
    def fit(self, x):
        a = np.nan_to_num(logt(x), nan=-5)
        self.mu = a.mean(0); self.sd = a.std(0) + 1e-6
        self.nn = NearestNeighbors(n_neighbors=self.k).fit((a - self.mu) / self.sd); return self
    def score(self, x):
        a = (np.nan_to_num(logt(x), nan=-5) - self.mu) / self.sd
        return self.nn.kneighbors(a)[0][:, -1]


def det_fit(make, x, y, on):
    rows = (y == 0) if on == 'benign' else np.ones(len(y), bool)
    return make().fit(x[rows])


folds = list(GroupKFold(n_splits=5).split(x, y, days))
prob = np.zeros(len(y))
for tr, te in folds:
    b = T.fit(x.iloc[tr], y[tr], params); prob[te] = b.predict(xgb.DMatrix(x.iloc[te], missing=np.nan))
thr = meta['threshold']
pred = prob >= thr
final = T.fit(x, y, params)
hpred = final.predict(xgb.DMatrix(hx, missing=np.nan)) >= thr
print('classifier oof recall', pred[y == 1].mean(), 'holdout recall', hpred[hy == 1].mean(), 'holdout fpr', hpred[hy == 0].mean())

cands = {
    'hbos10': lambda: HBOS(10), 'hbos20': lambda: HBOS(20), 'hbos40': lambda: HBOS(40),
    'if100x256': lambda: IF(100, 256), 'if25x128': lambda: IF(25, 128), 'knn1': lambda: KNN(1), 'knn5': lambda: KNN(5),
}
for name, make in cands.items():
    for on in ('benign', 'all'):
        oof = np.zeros(len(y))
        for tr, te in folds:
            d = det_fit(make, x.iloc[tr], y[tr], on); oof[te] = d.score(x.iloc[te])
        # threshold: CV benign flagged <= 0.10
        t10 = np.quantile(oof[y == 0], 0.90)
        # youden on caught-or-flagged
        best, bj = None, -9
        for t in np.unique(oof):
            f = oof >= t
            j = (pred | f)[y == 1].mean() - f[y == 0].mean()
            if j > bj: best, bj = t, j
        d = det_fit(make, x, y, on); hs = d.score(hx)
        out = []
        for tname, t in (('fpr10', t10), ('youden', best)):
            f = oof >= t; hf = hs >= t
            fam = {k: round(float((hpred | hf)[hl == k].mean()), 3) for k in ['SSH-Bruteforce', 'DDoS attacks-LOIC-HTTP', 'FTP-BruteForce']}
            out.append(f"{tname}: cv caught={(pred|f)[y==1].mean():.3f} cv benflag={f[y==0].mean():.3f} | HO caught={(hpred|hf)[hy==1].mean():.3f} benflag={hf[hy==0].mean():.3f} {fam}")
        print(f'{name:8s} {on:6s}', ' || '.join(out), flush=True)
