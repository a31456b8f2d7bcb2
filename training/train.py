#!/usr/bin/env python3
"""Train the embedded XGBoost model from CICFlowMeter CSVs.

Writes models/<name>/model.json (XGBoost JSON), metadata.json (features, preprocessing, threshold,
provenance, cross-validated metrics) and parity.json (synthetic rows with XGBoost's own probabilities,
which the TypeScript engine is tested against).

Deterministic: the same input gives the same files (fixed seeds, one thread, no timestamps).

  apt-get install -y python3-xgboost python3-pandas python3-sklearn
  /usr/bin/python3 training/train.py ../shared/data/cic-ids2018-train.csv --name cic-ids2018-xgb

The same recipe without some capture days (e.g. those of an evaluation set), to a scratch directory:

  /usr/bin/python3 training/train.py ../shared/data/cic-ids2018-train.csv \
      --exclude-days 14/02/2018,20/02/2018 --out /tmp/unseen-days
"""
import argparse
import hashlib
import itertools
import json
import math
import os
import re
import sys


class OneLineErrors(argparse.ArgumentParser):
    """argparse whose mistakes are one line naming what is wrong, an unknown option before anything else."""

    def error(self, message):
        self.exit(2, f'{self.prog}: {message} (see {self.prog} --help)\n')

    def parse_args(self, args=None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        takes_value = False
        for arg in args:
            if arg == '--':
                break
            if takes_value:
                takes_value = False
                continue
            name = arg.split('=', 1)[0]
            if arg.startswith('-') and arg != '-':
                action = self._option_string_actions.get(name)
                if action is None:
                    self.error(f'unknown option {name}')
                takes_value = action.nargs != 0 and '=' not in arg
        return super().parse_args(args, namespace)


def command_line():
    parser = OneLineErrors(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, allow_abbrev=False)
    parser.add_argument('csv', nargs='+', help='CICFlowMeter CSV files (snake_case or CICFlowMeter-V3 headers)')
    parser.add_argument('--name', default='cic-ids2018-xgb')
    parser.add_argument('--out', default=None, help='directory the model directory is written in (default: models/)')
    parser.add_argument('--exclude-days', default='', metavar='DD/MM/YYYY,...',
                        help='leave out the rows captured on these days (by the timestamp column)')
    parser.add_argument('--params', metavar='max_depth=2,n_estimators=100,...',
                        help='train with these parameters instead of choosing them by the grid search')
    return parser


if __name__ == '__main__':
    # Before the heavy imports below: --help and a mistyped option answer at once, even where they are missing.
    ARGS = command_line().parse_args()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402

SEED = 20180214
# Not features: identifiers of the capture rather than of the flow's behaviour (the ML-IDS reference model
# drops them), and the label.
EXCLUDED = ['dst_port', 'protocol', 'timestamp', 'label']
# Zero-variance bulk and flag columns in CSE-CIC-IDS2018 (always 0), excluded by the reference model.
ZERO_VARIANCE = ['bwd_blk_rate_avg', 'bwd_byts_b_avg', 'bwd_pkts_b_avg', 'bwd_psh_flags', 'bwd_urg_flags',
                 'fwd_blk_rate_avg', 'fwd_byts_b_avg', 'fwd_pkts_b_avg']
# CICFlowMeter writes -1 for "no TCP window seen"; a meaningful value, so these keep their negatives.
NEGATIVE_ALLOWED = ['init_fwd_win_byts', 'init_bwd_win_byts']
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models')
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
    """`dd/mm/YYYY` of each row's `timestamp`; one group for all rows without one."""
    if 'timestamp' not in frame.columns:
        return np.full(len(frame), 'unknown', dtype=object)
    return frame['timestamp'].astype(str).str.strip().str[:10].values


def parse_params(text):
    """`max_depth=2,n_estimators=100,learning_rate=0.1,min_child_weight=1`: one grid point, no search."""
    params = {}
    for item in text.split(','):
        key, _, value = item.partition('=')
        key = key.strip()
        if key not in GRID:
            sys.exit(f'--params: {key!r} is not one of {", ".join(GRID)}')
        try:
            params[key] = float(value) if key == 'learning_rate' else int(value)
        except ValueError:
            sys.exit(f'--params: {key}={value!r} is not a number')
    missing = [k for k in GRID if k not in params]
    if missing:
        sys.exit(f'--params: {", ".join(missing)} missing')
    return params


def parse_days(text):
    days = [d.strip() for d in text.split(',') if d.strip()]
    for d in days:
        if not re.fullmatch(r'\d{2}/\d{2}/\d{4}', d):
            sys.exit(f'--exclude-days: {d!r} is not dd/mm/YYYY')
    return sorted(set(days))


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


def operating_points(y, prob, model_threshold):
    """Recall and false-positive rate of the out-of-fold probabilities at thresholds 0.05, 0.10 ... 0.95 and
    the model's own: the table an operator picks a threshold from by the false alarms they can afford."""
    grid = {round(0.05 * i, 2) for i in range(1, 20)} | {model_threshold}
    attacks, benign = max(int((y == 1).sum()), 1), max(int((y == 0).sum()), 1)
    points = []
    for t in sorted(grid):
        pred = prob >= t
        points.append({
            'threshold': t,
            'recall': round(float((pred & (y == 1)).sum()) / attacks, 4),
            'false_positive_rate': round(float((pred & (y == 0)).sum()) / benign, 4),
        })
    return points


def by_family(labels, days, prob, threshold, folds):
    """Out-of-fold share of each label's rows flagged as attacks (recall for attack families, false-positive
    rate for Benign), with how many capture days the label spans and how many of its rows were scored by
    a fold model that had seen no row of that label (a family found on one day only is always unseen)."""
    pred = prob >= threshold
    unseen = np.zeros(len(labels), dtype=bool)
    for train, test in folds:
        trained_on = set(labels[train])
        unseen[test] = [label not in trained_on for label in labels[test]]
    rows = []
    for family in sorted(set(labels)):
        at = labels == family
        flagged = int(pred[at].sum())
        rows.append({
            'family': family,
            'rows': int(at.sum()),
            'flagged_as_attack': flagged,
            'rate': round(flagged / int(at.sum()), 4),
            'days': int(len(set(days[at]))),
            'rows_family_unseen': int(unseen[at].sum()),
        })
    return rows


def as_javascript_writes(value):
    """Whole floats as integers (1.0 -> 1), as JSON.stringify writes them, so `npm run evaluate
    --write-metadata` rewriting the card leaves the training tool's figures byte for byte."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: as_javascript_writes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_javascript_writes(v) for v in value]
    return value


def thresholds_by_feature(booster, features):
    found = {f: set() for f in features}
    for tree in json.loads(booster.save_raw('json'))['learner']['gradient_booster']['model']['trees']:
        for node, left in enumerate(tree['left_children']):
            if left != -1:
                found[features[tree['split_indices'][node]]].add(float(tree['split_conditions'][node]))
    return {f: sorted(v) for f, v in found.items()}


def edge_value(rng, thresholds, cuts, ordinary):
    """One cell of a parity row. With the probabilities `cuts` sets out (cumulative): a split threshold
    exactly or one float32 step either side, a null, a negative, an integer beyond float32's exact ones;
    otherwise `ordinary()`. Shared with shap_parity.py, so both fixtures stress the same edges."""
    r = rng.random()
    if thresholds and r < cuts[0]:
        v = float(np.float32(thresholds[rng.integers(len(thresholds))]))
        step = rng.integers(3)
        if step == 1:
            v = float(np.nextafter(np.float32(v), np.float32(np.inf)))
        elif step == 2:
            v = float(np.nextafter(np.float32(v), np.float32(-np.inf)))
        return v
    if r < cuts[1]:
        return None
    if r < cuts[2]:
        return -1.0 if rng.random() < 0.5 else -3.5
    if r < cuts[3]:
        return float(rng.integers(16_777_217, 200_000_000))  # beyond float32's exact integers
    return ordinary()


def parity_rows(booster, x, features, rng, count=300):
    """Synthetic flows that stress the engine: values exactly on split thresholds and one float32 step
    either side, large integers that float32 cannot hold, nulls, negatives; no training rows."""
    splits = thresholds_by_feature(booster, features)
    lo, hi = x.min(skipna=True), x.max(skipna=True)
    rows = []
    for _ in range(count):
        row = []
        for f in features:
            a = float(lo[f]) if not math.isnan(lo[f]) else 0.0
            b = float(hi[f]) if not math.isnan(hi[f]) else 1.0
            v = edge_value(rng, splits[f], (0.35, 0.45, 0.50, 0.60), lambda: float(a + (b - a) * rng.random() ** 3))
            row.append(v)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=features)
    prob = booster.predict(xgb.DMatrix(preprocess(frame, features), missing=np.nan))
    return rows, [float(p) for p in prob]


def main():
    args = ARGS
    args.out = DEFAULT_OUT if args.out is None else args.out
    args.exclude_days = parse_days(args.exclude_days)
    args.params = parse_params(args.params) if args.params is not None else None

    frame = pd.concat([read_flows(p) for p in args.csv], ignore_index=True)
    if args.exclude_days:
        if 'timestamp' not in frame.columns:
            sys.exit('--exclude-days: the data has no timestamp column')
        leave_out = np.isin(capture_day(frame), args.exclude_days)
        missing = sorted(set(args.exclude_days) - set(capture_day(frame)))
        print(f'excluding {int(leave_out.sum())} rows of {args.exclude_days}'
              + (f' (no rows on {missing})' if missing else ''), file=sys.stderr)
        frame = frame[~leave_out].reset_index(drop=True)
    labels = frame['label'].astype(str).str.strip().values
    y = (frame['label'].astype(str).str.strip().str.lower() != 'benign').astype(int).values
    features = [c for c in frame.columns if c not in EXCLUDED and c not in ZERO_VARIANCE]
    x = preprocess(frame, features)
    groups = capture_day(frame)
    # Grouped by capture day: the model must generalise to days it has not seen, as in production.
    # Five folds, or one per day when fewer days are left.
    n_folds = min(5, len(set(groups)))
    if n_folds < 2:
        sys.exit(f'day-grouped cross-validation needs rows from at least 2 capture days; {n_folds} left')
    folds = list(GroupKFold(n_splits=n_folds).split(x, y, groups))

    results = []
    keys = list(GRID)
    grid = [tuple(args.params[k] for k in keys)] if args.params else itertools.product(*GRID.values())
    for values in grid:
        params = dict(zip(keys, values))
        prob = out_of_fold(x, y, groups, params, folds)
        results.append((roc_auc_score(y, prob), params, prob))
        print(f'cv auc={results[-1][0]:.4f} {params}', file=sys.stderr)
    # Best AUC; ties go to the simpler model (fewer, shallower trees), by the grid's order.
    auc, params, prob = max(results, key=lambda r: (round(r[0], 4), -r[1]['max_depth'], -r[1]['n_estimators']))
    threshold = youden_threshold(y, prob)
    cv = metrics(y, prob, threshold)
    print(f'chosen {params} threshold={threshold} cv={cv}', file=sys.stderr)
    cv['rows'] = int(len(y))
    cv['measures'] = (
        f'Out-of-fold predictions of {n_folds}-fold cross-validation grouped by capture day: every row is scored by a '
        'model trained without any row of its day, at the model\'s threshold. The estimate for days the '
        'model has not seen. by_family: the share of each label\'s rows flagged as attacks (recall for '
        'attack families, false-positive rate for Benign); rows_family_unseen counts rows scored by a fold '
        'model that had no row of that family (families captured on one day only are always unseen).')
    cv['by_family'] = by_family(labels, groups, prob, threshold, folds)

    booster = fit(x, y, params)
    model_dir = os.path.join(args.out, args.name)
    os.makedirs(model_dir, exist_ok=True)
    booster.save_model(os.path.join(model_dir, 'model.json'))

    digest = hashlib.sha256()
    for p in args.csv:
        with open(p, 'rb') as f:
            digest.update(f.read())
    data_sha256 = digest.hexdigest()
    if args.exclude_days:
        # Another model from the same file: another version.
        digest.update(('exclude-days:' + ','.join(args.exclude_days)).encode())
    # As run from the repository with the data in ../shared/data (the paths given are not recorded, so the
    # files do not depend on where the data was read from).
    command = ('/usr/bin/python3 training/train.py '
               + ' '.join('../shared/data/' + os.path.basename(p) for p in args.csv) + ' --name ' + args.name)
    if args.exclude_days:
        command += ' --exclude-days ' + ','.join(args.exclude_days)
    if os.path.abspath(args.out) != os.path.abspath(DEFAULT_OUT):
        command += ' --out ' + args.out
    if args.params:
        command += ' --params ' + ','.join(f'{k}={args.params[k]}' for k in GRID)
        digest.update(('params:' + json.dumps(args.params, sort_keys=True)).encode())
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
            'data_sha256': data_sha256,
            'source': 'CSE-CIC-IDS2018 (Canadian Institute for Cybersecurity), CICFlowMeter-V3 flows',
            'rows': int(len(y)),
            'excluded_days': args.exclude_days,
            'attack_rows': int(y.sum()),
            'benign_rows': int((y == 0).sum()),
            'xgboost_version': xgb.__version__,
            'params': {**params, 'tree_method': 'exact', 'seed': SEED},
            'selection': ('parameters given (--params)' if args.params else
                          f'grid search on {n_folds}-fold cross-validation grouped by capture day (ROC AUC)')
                         + '; threshold maximises TPR - FPR on the out-of-fold probabilities',
            'command': command,
        },
        'cv_metrics': cv,
        'operating_points': operating_points(y, prob, threshold),
    }
    # Holdout figures come from `npm run evaluate`, through the API; retraining keeps them only for
    # the same model version.
    if previous.get('version') == metadata['version']:
        for key in sorted(previous):
            if key.startswith('holdout_metrics'):
                metadata[key] = previous[key]
    with open(metadata_path, 'w') as f:
        json.dump(as_javascript_writes(metadata), f, indent=2)
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
