"""Writes shap-parity.json beside a committed model: synthetic flows with XGBoost's own SHAP values
(`predict(DMatrix, pred_contribs=True)`) and margins, which the service's TreeSHAP is tested against.

It reads model.json and metadata.json and never retrains or rewrites them. The rows stress what an
explainer can get wrong: values exactly on split thresholds and one float32 step either side, nulls
(missing), negatives (missing for most features, kept for the window sizes), integers beyond float32's
exact range, and the two example flows. Deterministic (fixed seed).

  /usr/bin/python3 training/shap_parity.py models/cic-ids2018-xgb

The bundled model's trees are two levels deep; `--deep FILE` also writes a small synthetic model with
trees six levels deep (features repeating along paths, missing values learned both ways) together with
its rows and XGBoost's SHAP values, for the same test on deep trees:

  /usr/bin/python3 training/shap_parity.py models/cic-ids2018-xgb --deep test/fixtures/treeshap-deep.json
"""
import argparse
import json
import math
import os

import numpy as np
import pandas as pd
import xgboost as xgb

from train import edge_value

SEED = 20180214


def preprocess(frame, features, preprocessing):
    """The service's cleaning (metadata.preprocessing): non-finite and, unless allowed, negative values
    are missing; float32, as XGBoost sees the features."""
    x = frame[features].astype('float64').replace([np.inf, -np.inf], np.nan)
    if preprocessing.get('negative') == 'missing':
        for col in features:
            if col not in preprocessing.get('negative_allowed', []):
                x.loc[x[col] < 0, col] = np.nan
    return x.astype('float32')


def thresholds_by_feature(model, features):
    found = {f: set() for f in features}
    for tree in model['learner']['gradient_booster']['model']['trees']:
        for node, left in enumerate(tree['left_children']):
            if left != -1:
                found[features[tree['split_indices'][node]]].add(float(tree['split_conditions'][node]))
    return {f: sorted(v) for f, v in found.items()}


def synthetic_rows(splits, features, rng, count):
    rows = []
    for _ in range(count):
        row = []
        for f in features:
            v = edge_value(rng, splits[f], (0.45, 0.55, 0.62, 0.70), lambda: float(rng.random() ** 3 * 10 ** rng.integers(0, 8)))
            row.append(v)
        rows.append(row)
    return rows


def write_deep_fixture(path, rng):
    """A synthetic binary task on 6 features, 30 trees of depth 6, with missing values in training and in
    the rows explained; model, rows and pred_contribs in one file."""
    n, k = 2000, 6
    x = rng.normal(size=(n, k)).astype('float32')
    y = ((x[:, 0] * x[:, 1] > 0) ^ (x[:, 2] + 0.5 * x[:, 3] > 0.3)).astype(int)
    x[rng.random(size=x.shape) < 0.1] = np.nan
    params = {'objective': 'binary:logistic', 'max_depth': 6, 'eta': 0.3, 'tree_method': 'exact',
              'seed': SEED, 'nthread': 1, 'base_score': 0.3}
    booster = xgb.train(params, xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=30)
    model = json.loads(booster.save_raw('json'))
    rows = rng.normal(size=(150, k)).astype('float32')
    rows[rng.random(size=rows.shape) < 0.15] = np.nan
    # Values exactly on thresholds and one float32 step either side.
    thresholds = [float(c) for tree in model['learner']['gradient_booster']['model']['trees']
                  for c, left in zip(tree['split_conditions'], tree['left_children']) if left != -1]
    for r in range(50):
        f = r % k
        t = np.float32(thresholds[(r * 7) % len(thresholds)])
        rows[r, f] = [t, np.nextafter(t, np.float32(np.inf)), np.nextafter(t, np.float32(-np.inf))][r % 3]
    matrix = xgb.DMatrix(rows, missing=np.nan)
    contribs = booster.predict(matrix, pred_contribs=True)
    out = {
        'xgboost_version': xgb.__version__,
        'model': model,
        'rows': [[None if math.isnan(v) else float(v) for v in row] for row in rows],
        'contributions': [[float(v) for v in row[:-1]] for row in contribs],
        'bias': [float(row[-1]) for row in contribs],
        'margins': [float(v) for v in booster.predict(matrix, output_margin=True)],
    }
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    with open(path, 'w') as f:
        json.dump(out, f)
        f.write('\n')
    print(f'wrote {path}: {len(rows)} rows, {len(model["learner"]["gradient_booster"]["model"]["trees"])} trees')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model_dir')
    parser.add_argument('--rows', type=int, default=250)
    parser.add_argument('--deep', help='also write the deep-tree fixture to this file')
    args = parser.parse_args()

    with open(os.path.join(args.model_dir, 'metadata.json')) as f:
        metadata = json.load(f)
    with open(os.path.join(args.model_dir, 'model.json')) as f:
        model = json.load(f)
    features = metadata['features']
    booster = xgb.Booster(model_file=os.path.join(args.model_dir, 'model.json'))
    rng = np.random.default_rng(SEED)

    rows = synthetic_rows(thresholds_by_feature(model, features), features, rng, args.rows)
    examples_path = os.path.join(args.model_dir, 'examples.json')
    if os.path.exists(examples_path):
        with open(examples_path) as f:
            examples = json.load(f)
        rows += [[examples[label].get(feat) for feat in features] for label in sorted(examples)]

    frame = pd.DataFrame(rows, columns=features, dtype='float64')
    matrix = xgb.DMatrix(preprocess(frame, features, metadata['preprocessing']), missing=np.nan)
    contribs = booster.predict(matrix, pred_contribs=True)
    margins = booster.predict(matrix, output_margin=True)

    # Shuffled column order plus columns the model ignores, as clients send them.
    order = list(rng.permutation(len(features)))
    columns = [features[i] for i in order] + ['timestamp', 'dst_port']
    data = [[None if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in (row[i] for i in order)]
            + ['21/02/2018 10:15:06', 80] for row in rows]
    out = {
        'xgboost_version': xgb.__version__,
        'features': features,
        'columns': columns,
        'data': data,
        # Per row: one contribution per model feature, in `features` order; the bias; the margin.
        'contributions': [[float(v) for v in row[:-1]] for row in contribs],
        'bias': [float(row[-1]) for row in contribs],
        'margins': [float(v) for v in margins],
    }
    path = os.path.join(args.model_dir, 'shap-parity.json')
    with open(path, 'w') as f:
        json.dump(out, f)
        f.write('\n')
    print(f'wrote {path}: {len(rows)} rows')
    if args.deep:
        write_deep_fixture(args.deep, np.random.default_rng(SEED + 1))


if __name__ == '__main__':
    main()
