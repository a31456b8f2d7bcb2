#!/usr/bin/env python3
"""Train the embedded XGBoost model from CICFlowMeter CSVs.

Writes models/<name>/model.json (XGBoost JSON), metadata.json (features, preprocessing, threshold,
provenance, cross-validated metrics) and parity.json (synthetic rows with XGBoost's own probabilities,
which the TypeScript engine is tested against).

Deterministic: the same input gives the same files (fixed seeds, one thread, no timestamps).

  apt-get install -y python3-xgboost python3-pandas python3-sklearn
  /usr/bin/python3 training/train.py ../shared/data/cic-ids2018-train.csv --name cic-ids2018-xgb
"""
import argparse
import hashlib
import itertools
import json
import math
import os
import re
import sys

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import GroupKFold

SEED = 20180214
# Not features: identifiers of the capture rather than of the flow's behaviour (the ML-IDS reference model
# drops them), and the label.
EXCLUDED = ['dst_port', 'protocol', 'timestamp', 'label']
# Zero-variance bulk and flag columns in CSE-CIC-IDS2018 (always 0), excluded by the reference model.
ZERO_VARIANCE = ['bwd_blk_rate_avg', 'bwd_byts_b_avg', 'bwd_pkts_b_avg', 'bwd_psh_flags', 'bwd_urg_flags',
                 'fwd_blk_rate_avg', 'fwd_byts_b_avg', 'fwd_pkts_b_avg']
# CICFlowMeter writes -1 for "no TCP window seen"; a meaningful value, so these keep their negatives.
NEGATIVE_ALLOWED = ['init_fwd_win_byts', 'init_bwd_win_byts']
GRID = {
    'max_depth': [2, 3, 4, 6],
    'n_estimators': [50, 100, 200],
    'learning_rate': [0.1, 0.3],
    'min_child_weight': [1, 3],
}


def snake_case(name):
    """CICFlowMeter-V3 header to snake_case: `Flow Byts/s` -> `flow_byts_s` (same rule as the service)."""
    return re.sub(r'[^a-z0-9]+', '_', name.strip().lower()).strip('_')


def read_flows(path):
    frame = pd.read_csv(path, low_memory=False)
    frame.columns = [snake_case(c) for c in frame.columns]
    if 'label' not in frame.columns:
        sys.exit(f'{path}: no label column')
    # Repeated header lines appear inside the original public CSVs.
    frame = frame[frame['label'].astype(str).str.lower() != 'label']
    return frame


def preprocess(frame, features):
    """The cleaning the service applies (metadata.preprocessing), as float32 like XGBoost sees it."""
    x = frame[features].apply(pd.to_numeric, errors='coerce').astype('float64')
    x = x.replace([np.inf, -np.inf], np.nan)
    for col in features:
        if col not in NEGATIVE_ALLOWED:
            x.loc[x[col] < 0, col] = np.nan
    return x.astype('float32')


def capture_day(frame):
    if 'timestamp' not in frame.columns:
        return np.zeros(len(frame), dtype=int)
    return frame['timestamp'].astype(str).str[:10].values


def metrics(y, prob, threshold):
    pred = (prob >= threshold).astype(int)
    negatives = (y == 0).sum()
    fp = int(((pred == 1) & (y == 0)).sum())
    return {
        'accuracy': round(float(accuracy_score(y, pred)), 4),
        'precision': round(float(precision_score(y, pred, zero_division=0)), 4),
        'recall': round(float(recall_score(y, pred)), 4),
        'f1': round(float(f1_score(y, pred)), 4),
        'false_positive_rate': round(fp / negatives, 4) if negatives else None,
        'roc_auc': round(float(roc_auc_score(y, prob)), 4),
    }


def xgb_params(params):
    return {
        'objective': 'binary:logistic', 'eval_metric': 'logloss', 'tree_method': 'exact',
        'max_depth': params['max_depth'], 'eta': params['learning_rate'],
        'min_child_weight': params['min_child_weight'], 'seed': SEED, 'nthread': 1,
    }


def fit(x, y, params):
    return xgb.train(xgb_params(params), xgb.DMatrix(x, label=y, missing=np.nan),
                     num_boost_round=params['n_estimators'])


def out_of_fold(x, y, groups, params, folds):
    prob = np.zeros(len(y))
    for train, test in folds:
        booster = fit(x.iloc[train], y[train], params)
        prob[test] = booster.predict(xgb.DMatrix(x.iloc[test], missing=np.nan))
    return prob


def youden_threshold(y, prob):
    """Threshold maximising TPR - FPR: independent of the class mix, which differs between captures."""
    best, best_j = 0.5, -1.0
    for t in np.unique(np.round(prob, 4)):
        pred = prob >= t
        tpr = (pred & (y == 1)).sum() / max((y == 1).sum(), 1)
        fpr = (pred & (y == 0)).sum() / max((y == 0).sum(), 1)
        if tpr - fpr > best_j + 1e-12:
            best, best_j = float(t), tpr - fpr
    return best


def thresholds_by_feature(booster, features):
    found = {f: set() for f in features}
    for tree in json.loads(booster.save_raw('json'))['learner']['gradient_booster']['model']['trees']:
        for node, left in enumerate(tree['left_children']):
            if left != -1:
                found[features[tree['split_indices'][node]]].add(float(tree['split_conditions'][node]))
    return {f: sorted(v) for f, v in found.items()}


def parity_rows(booster, x, features, rng, count=300):
    """Synthetic flows that stress the engine: values exactly on split thresholds and one float32 step
    either side, large integers that float32 cannot hold, nulls, negatives; no training rows."""
    splits = thresholds_by_feature(booster, features)
    lo, hi = x.min(skipna=True), x.max(skipna=True)
    rows = []
    for _ in range(count):
        row = []
        for f in features:
            r = rng.random()
            t = splits[f]
            if t and r < 0.35:
                v = float(np.float32(t[rng.integers(len(t))]))
                step = rng.integers(3)
                if step == 1:
                    v = float(np.nextafter(np.float32(v), np.float32(np.inf)))
                elif step == 2:
                    v = float(np.nextafter(np.float32(v), np.float32(-np.inf)))
            elif r < 0.45:
                v = None
            elif r < 0.50:
                v = -1.0 if rng.random() < 0.5 else -3.5
            elif r < 0.60:
                v = float(rng.integers(16_777_217, 200_000_000))  # beyond float32's exact integers
            else:
                a, b = float(lo[f]) if not math.isnan(lo[f]) else 0.0, float(hi[f]) if not math.isnan(hi[f]) else 1.0
                v = float(a + (b - a) * rng.random() ** 3)
            row.append(v)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=features)
    prob = booster.predict(xgb.DMatrix(preprocess(frame, features), missing=np.nan))
    return rows, [float(p) for p in prob]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('csv', nargs='+', help='CICFlowMeter CSV files (snake_case or CICFlowMeter-V3 headers)')
    parser.add_argument('--name', default='cic-ids2018-xgb')
    parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '..', 'models'))
    args = parser.parse_args()

    frame = pd.concat([read_flows(p) for p in args.csv], ignore_index=True)
    y = (frame['label'].astype(str).str.strip().str.lower() != 'benign').astype(int).values
    features = [c for c in frame.columns if c not in EXCLUDED and c not in ZERO_VARIANCE]
    x = preprocess(frame, features)
    groups = capture_day(frame)
    # Grouped by capture day: the model must generalise to days it has not seen, as in production.
    folds = list(GroupKFold(n_splits=5).split(x, y, groups))

    results = []
    keys = list(GRID)
    for values in itertools.product(*GRID.values()):
        params = dict(zip(keys, values))
        prob = out_of_fold(x, y, groups, params, folds)
        results.append((roc_auc_score(y, prob), params, prob))
        print(f'cv auc={results[-1][0]:.4f} {params}', file=sys.stderr)
    # Best AUC; ties go to the simpler model (fewer, shallower trees), by the grid's order.
    auc, params, prob = max(results, key=lambda r: (round(r[0], 4), -r[1]['max_depth'], -r[1]['n_estimators']))
    threshold = youden_threshold(y, prob)
    cv = metrics(y, prob, threshold)
    print(f'chosen {params} threshold={threshold} cv={cv}', file=sys.stderr)

    booster = fit(x, y, params)
    model_dir = os.path.join(args.out, args.name)
    os.makedirs(model_dir, exist_ok=True)
    booster.save_model(os.path.join(model_dir, 'model.json'))

    digest = hashlib.sha256()
    for p in args.csv:
        with open(p, 'rb') as f:
            digest.update(f.read())
    metadata_path = os.path.join(model_dir, 'metadata.json')
    previous = {}
    if os.path.exists(metadata_path):
        with open(metadata_path) as f:
            previous = json.load(f)
    metadata = {
        'name': args.name,
        'version': digest.hexdigest()[:12],
        'format': 'xgboost-json',
        'objective': 'binary:logistic',
        'features': features,
        'preprocessing': {
            'column_names': 'snake_case',
            'non_finite': 'missing',
            'negative': 'missing',
            'negative_allowed': [f for f in NEGATIVE_ALLOWED if f in features],
        },
        'threshold': threshold,
        'labels': {'0': 'benign', '1': 'attack'},
        'training': {
            'data': [os.path.basename(p) for p in args.csv],
            'data_sha256': digest.hexdigest(),
            'source': 'CSE-CIC-IDS2018 (Canadian Institute for Cybersecurity), CICFlowMeter-V3 flows',
            'rows': int(len(y)),
            'attack_rows': int(y.sum()),
            'benign_rows': int((y == 0).sum()),
            'xgboost_version': xgb.__version__,
            'params': {**params, 'tree_method': 'exact', 'seed': SEED},
            'selection': 'grid search on 5-fold cross-validation grouped by capture day (ROC AUC); '
                         'threshold maximises TPR - FPR on the out-of-fold probabilities',
            'command': '/usr/bin/python3 training/train.py ../shared/data/cic-ids2018-train.csv --name ' + args.name,
        },
        'cv_metrics': cv,
    }
    # Holdout figures come from `npm run evaluate`, through the API; retraining keeps them only for
    # the same model version.
    if previous.get('version') == metadata['version'] and 'holdout_metrics' in previous:
        metadata['holdout_metrics'] = previous['holdout_metrics']
    with open(metadata_path, 'w') as f:
        json.dump(metadata, f, indent=2)
        f.write('\n')

    rng = np.random.default_rng(SEED)
    rows, probabilities = parity_rows(booster, x, features, rng)
    # Shuffled column order plus columns the model ignores, as clients send them.
    order = list(rng.permutation(len(features)))
    columns = [features[i] for i in order] + ['timestamp', 'dst_port']
    data = [[row[i] for i in order] + ['21/02/2018 10:15:06', 80] for row in rows]
    with open(os.path.join(model_dir, 'parity.json'), 'w') as f:
        json.dump({'columns': columns, 'data': data, 'probabilities': probabilities}, f)
        f.write('\n')

    # Example flows for docs: per-feature medians of benign and attack flows (no single training row).
    examples = {}
    for label, mask in (('benign', y == 0), ('attack', y == 1)):
        med = x[mask].median()
        examples[label] = {f: (None if math.isnan(med[f]) else float(med[f])) for f in features}
    with open(os.path.join(model_dir, 'examples.json'), 'w') as f:
        json.dump(examples, f, indent=2)
        f.write('\n')
    print(f'wrote {model_dir}', file=sys.stderr)


if __name__ == '__main__':
    main()
