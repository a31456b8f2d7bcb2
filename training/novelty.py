#!/usr/bin/env python3
"""Fit the unfamiliar-flow detector that ships beside a model: an isolation forest on the benign rows the
model was trained on, exported as trees the service's tree engine walks (no Python at serving time).

Writes <model-dir>/novelty.json: the detector's card (what it was fitted on, its threshold and how it was
chosen, cross-validated figures, trade-off curve) and its trees; and novelty-parity.json (synthetic rows with
scikit-learn's own scores, which the TypeScript evaluator is tested against).

The threshold is chosen by cross-validation grouped by capture day on the model's training rows (the
detector and the classifier refitted without each fold's days): the out-of-fold score above which
BENIGN_BUDGET of benign flows from unseen days fall. The holdout is read only after that, and only to report.

  # the bundled model's detector
  /usr/bin/python3 training/novelty.py ../shared/data/cic-ids2018-train.csv --model-dir models/cic-ids2018-xgb
  # the unseen-days figures: model and detector without the holdout's days, then scored on the holdout
  /usr/bin/python3 training/train.py ../shared/data/cic-ids2018-train.csv \\
      --exclude-days 14/02/2018,20/02/2018 --out /tmp/unseen-days \\
      --params max_depth=2,n_estimators=100,learning_rate=0.1,min_child_weight=1
  /usr/bin/python3 training/novelty.py ../shared/data/cic-ids2018-train.csv \\
      --model-dir /tmp/unseen-days/cic-ids2018-xgb --holdout ../shared/holdout/cic-ids2018-holdout.csv
  # the bundled detector's card, with the bundled pair's holdout figures and the unseen-days ones
  /usr/bin/python3 training/novelty.py ../shared/data/cic-ids2018-train.csv --model-dir models/cic-ids2018-xgb \\
      --holdout ../shared/holdout/cic-ids2018-holdout.csv --unseen-days /tmp/unseen-days/cic-ids2018-xgb/novelty.json
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import GroupKFold

import train as T

SEED = 20180214
# The best day-grouped CV over three seeds among forests whose walk costs no more CPU per row than the
# classifier's (npm run bench:model); 100 trees of 256 rows score a little better in CV at 5x the cost.
TREES = 25
SAMPLE = 128
# Missing values (NaN after the service's preprocessing) sit below every observed value, in the log space.
MISSING = -5.0
# Share of benign flows from unseen days the operator accepts to see flagged: the goal (<= 0.1).
BENIGN_BUDGET = 0.10


def log_space(x):
    """sign(x) * log1p(|x|): flow features span ten orders of magnitude; isolation splits on a log scale."""
    a = np.asarray(x, dtype='float64')
    return np.nan_to_num(np.sign(a) * np.log1p(np.abs(a)), nan=MISSING)


def from_log(t):
    return math.copysign(math.expm1(abs(t)), t)


def average_path(n):
    """c(n) of Liu et al.: the average path length of an unsuccessful search in a binary tree of n points."""
    if n <= 1:
        return 0.0
    if n == 2:
        return 1.0
    return 2.0 * (math.log(n - 1.0) + np.euler_gamma) - 2.0 * (n - 1.0) / n


def fit_detector(x):
    return IsolationForest(n_estimators=TREES, max_samples=min(SAMPLE, len(x)), random_state=SEED).fit(log_space(x))


def score(forest, x):
    """The isolation forest's anomaly score in (0, 1]: 2^(-mean path length / c(sample size))."""
    return -forest.score_samples(log_space(x))


def float32_below(a):
    """The float32 threshold T such that, for float32 x, x < T exactly when x <= a (the engine goes left on <)."""
    f = np.float32(a)
    if float(f) > a:
        f = np.nextafter(f, np.float32(-np.inf))
    return float(np.nextafter(f, np.float32(np.inf)))


def export_trees(forest, n_features):
    """Each tree as the XGBoost JSON arrays the engine flattens: thresholds back in the raw feature space,
    missing going where the imputed value goes, and each leaf worth (depth + c(leaf samples)) / trees, so
    that the forest's margin is the mean path length."""
    trees = []
    subsample = forest._max_features != n_features
    for est, feats in zip(forest.estimators_, forest.estimators_features_):
        t = est.tree_
        n = t.node_count
        depth = np.zeros(n, dtype=int)
        for i in range(n):
            for child in (t.children_left[i], t.children_right[i]):
                if child != -1:
                    depth[child] = depth[i] + 1
        tree = {'left_children': [], 'right_children': [], 'split_indices': [], 'split_conditions': [], 'default_left': []}
        for i in range(n):
            left = int(t.children_left[i])
            tree['left_children'].append(left)
            tree['right_children'].append(int(t.children_right[i]))
            if left == -1:
                tree['split_indices'].append(0)
                tree['split_conditions'].append((depth[i] + average_path(int(t.n_node_samples[i]))) / len(forest.estimators_))
                tree['default_left'].append(0)
            else:
                f = int(feats[t.feature[i]]) if subsample else int(t.feature[i])
                tree['split_indices'].append(f)
                tree['split_conditions'].append(float32_below(from_log(float(t.threshold[i]))))
                tree['default_left'].append(1 if MISSING <= t.threshold[i] else 0)
        trees.append(tree)
    return trees


def figures(y, labels, predicted, scores, threshold):
    """Share of attacks predicted attack or flagged (overall and per family), share of benign flagged."""
    flagged = scores >= threshold
    caught = predicted | flagged
    families = []
    for family in sorted(set(labels)):
        at = labels == family
        families.append({
            'family': family,
            'rows': int(at.sum()),
            'rate': round(float((flagged if family.lower() == 'benign' else caught)[at].mean()), 4),
            'predicted_attack': round(float(predicted[at].mean()), 4),
        })
    return {
        'threshold': round(float(threshold), 6),
        'attacks_caught_or_flagged': round(float(caught[y == 1].mean()), 4),
        'attacks_predicted': round(float(predicted[y == 1].mean()), 4),
        'benign_flagged': round(float(flagged[y == 0].mean()), 4),
        'benign_predicted_attack': round(float(predicted[y == 0].mean()), 4),
        'by_family': families,
    }


def curve(y, predicted, scores, thresholds):
    points = []
    for t in thresholds:
        flagged = scores >= t
        points.append({
            'threshold': round(float(t), 6),
            'attacks_caught_or_flagged': round(float((predicted | flagged)[y == 1].mean()), 4),
            'benign_flagged': round(float(flagged[y == 0].mean()), 4),
        })
    return points


def synthetic_rows(x, rng, count=200):
    lo, hi = x.min(skipna=True), x.max(skipna=True)
    rows = []
    for _ in range(count):
        row = []
        for f in x.columns:
            a = float(lo[f]) if not math.isnan(lo[f]) else 0.0
            b = float(hi[f]) if not math.isnan(hi[f]) else 1.0
            r = rng.random()
            row.append(None if r < 0.1 else float(np.float32(a + (b - a) * rng.random() ** 4)))
        rows.append(row)
    return rows


def drift_reference(x):
    """Per feature, the training distribution the service's drift monitor compares recent traffic with: decile
    edges (float32, distinct) and the share of training rows in each bin (bin i holds edges[i-1] <= v < edges[i])
    and missing."""
    reference = {}
    for f in x.columns:
        col = x[f].values.astype('float32')
        present = col[~np.isnan(col)]
        edges = sorted(set(float(e) for e in np.quantile(present, np.linspace(0.1, 0.9, 9)).astype('float32'))) if len(present) else []
        bins = np.searchsorted(np.array(edges, dtype='float32'), present, side='right')
        shares = np.bincount(bins, minlength=len(edges) + 1) / len(col)
        reference[f] = {'edges': edges, 'shares': [round(float(s), 6) for s in shares],
                        'missing': round(float(np.isnan(col).mean()), 6)}
    return reference


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('csv', nargs='+')
    parser.add_argument('--model-dir', required=True, help='the model the detector ships beside (its features, days, parameters)')
    parser.add_argument('--holdout', help='report on these flows after the threshold is chosen (never used to choose)')
    parser.add_argument('--unseen-days', help='novelty.json of the same recipe fitted without the holdout days, whose '
                        'holdout figures the card repeats')
    args = parser.parse_args()

    with open(os.path.join(args.model_dir, 'metadata.json')) as f:
        meta = json.load(f)
    features = meta['features']
    params = {k: meta['training']['params'][k] for k in T.GRID}
    frame = pd.concat([T.read_flows(p) for p in args.csv], ignore_index=True)
    excluded = meta['training'].get('excluded_days', [])
    if excluded:
        frame = frame[~np.isin(T.capture_day(frame), excluded)].reset_index(drop=True)
    labels = frame['label'].astype(str).str.strip().values
    y = (np.char.lower(labels.astype(str)) != 'benign').astype(int)
    x = T.preprocess(frame, features)
    days = T.capture_day(frame)
    if len(y) != meta['training']['rows']:
        sys.exit(f'{len(y)} rows left, but the model was trained on {meta["training"]["rows"]}: not the same data')

    # Out of fold, grouped by capture day as train.py: the classifier and the detector both refitted without the
    # fold's days, so the scores are those of days neither has seen.
    folds = list(GroupKFold(n_splits=min(5, len(set(days)))).split(x, y, days))
    prob = np.zeros(len(y))
    oof = np.zeros(len(y))
    for train, test in folds:
        prob[test] = T.fit(x.iloc[train], y[train], params).predict(xgb.DMatrix(x.iloc[test], missing=np.nan))
        benign = train[y[train] == 0]
        oof[test] = score(fit_detector(x.iloc[benign]), x.iloc[test])
    predicted = prob >= meta['threshold']
    threshold = float(np.quantile(oof[y == 0], 1 - BENIGN_BUDGET))
    grid = sorted(set(float(np.quantile(oof[y == 0], 1 - b)) for b in (0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)))

    forest = fit_detector(x[y == 0])
    n_features = len(features)
    trees = export_trees(forest, n_features)
    digest = hashlib.sha256(json.dumps(trees).encode()).hexdigest()[:12]
    command = ('/usr/bin/python3 training/novelty.py ' + ' '.join('../shared/data/' + os.path.basename(p) for p in args.csv)
               + ' --model-dir ' + args.model_dir)
    card = {
        'kind': 'isolation-forest',
        'version': digest,
        'model_version': meta['version'],
        'features': features,
        'score': 'Isolation-forest anomaly score in (0, 1]: 2^(-mean path length / c(sample_size)); about 0.5 or '
                 'less is ordinary, nearer 1 is unlike every benign training flow.',
        'fitted_on': {
            'rows': int((y == 0).sum()),
            'which': 'the benign rows of the model\'s own training rows (same file, same excluded days)',
            'excluded_days': excluded,
            'trees': TREES, 'sample_size': min(SAMPLE, int((y == 0).sum())), 'seed': SEED,
            'transform': f'sign(x)*log1p(|x|) of the preprocessed features, missing as {MISSING}',
            'sklearn_version': __import__('sklearn').__version__,
        },
        'threshold': round(threshold, 6),
        'threshold_selection': (f'{len(folds)}-fold cross-validation grouped by capture day on the training rows: the '
                                f'out-of-fold score that {BENIGN_BUDGET} of benign flows of unseen days reach or pass. '
                                'The holdout plays no part.'),
        'cv': {**figures(y, labels, predicted, oof, threshold), 'curve': curve(y, predicted, oof, grid),
               'measures': 'Out-of-fold: each row scored by a classifier and a detector fitted without its capture day.'},
        'command': command,
        'sample_size': min(SAMPLE, int((y == 0).sum())),
        'average_path_length': average_path(min(SAMPLE, int((y == 0).sum()))),
    }
    if args.holdout:
        hold = T.read_flows(args.holdout)
        hlabels = hold['label'].astype(str).str.strip().values
        hy = (np.char.lower(hlabels.astype(str)) != 'benign').astype(int)
        hx = T.preprocess(hold, features)
        booster = xgb.Booster()
        booster.load_model(os.path.join(args.model_dir, 'model.json'))
        hpred = booster.predict(xgb.DMatrix(hx, missing=np.nan)) >= meta['threshold']
        hs = score(forest, hx)
        key = 'holdout_days_unseen' if excluded else 'holdout'
        card[key] = {**figures(hy, hlabels, hpred, hs, threshold), 'curve': curve(hy, hpred, hs, grid),
                     'data': os.path.basename(args.holdout), 'command': command + ' --holdout ../shared/holdout/'
                     + os.path.basename(args.holdout)}
    if args.unseen_days:
        with open(args.unseen_days) as f:
            unseen = json.load(f)
        card['holdout_days_unseen'] = {**unseen['holdout_days_unseen'], 'fitted_without': unseen['fitted_on']['excluded_days']}
    card['drift_reference'] = {
        'rows': int(len(y)), 'which': 'every training row of the model (benign and attack)',
        'features': drift_reference(x),
    }
    # The card readable, the trees on one line.
    text = json.dumps(T.as_javascript_writes(card), indent=2)
    with open(os.path.join(args.model_dir, 'novelty.json'), 'w') as f:
        f.write(text[:-2] + ',\n  "trees": ' + json.dumps(trees, separators=(',', ':')) + '\n}\n')

    rng = np.random.default_rng(SEED)
    rows = synthetic_rows(x, rng)
    synth = T.preprocess(pd.DataFrame(rows, columns=features), features)
    with open(os.path.join(args.model_dir, 'novelty-parity.json'), 'w') as f:
        json.dump({'columns': features, 'data': rows, 'scores': [float(s) for s in score(forest, synth)]}, f)
        f.write('\n')
    summary = {k: card[k] for k in card if k in ('threshold', 'cv', 'holdout', 'holdout_days_unseen')}
    for k, v in summary.items():
        if isinstance(v, dict):
            print(k, {kk: vv for kk, vv in v.items() if kk not in ('curve',)}, file=sys.stderr)
        else:
            print(k, v, file=sys.stderr)


if __name__ == '__main__':
    main()
