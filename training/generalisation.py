#!/usr/bin/env python3
"""Variants of the bundled recipe meant to generalise better to unseen capture days, scored only by the
5-fold cross-validation grouped by capture day that train.py selects with (ROC AUC of the out-of-fold
probabilities, on the training file). Never run on the holdout.

  /usr/bin/python3 training/generalisation.py ../shared/data/cic-ids2018-train.csv
"""
import sys

import numpy as np
import xgboost as xgb
from sklearn.model_selection import GroupKFold

import train as T

BASE = dict(max_depth=2, n_estimators=100, learning_rate=0.1, min_child_weight=1)
WINDOWS = ['init_fwd_win_byts', 'init_bwd_win_byts']  # set by each host's TCP configuration: drift by day


def main():
    frame = T.read_flows(sys.argv[1])
    y = (frame['label'].astype(str).str.strip().str.lower() != 'benign').astype(int).values
    every = [c for c in frame.columns if c not in T.EXCLUDED and c not in T.ZERO_VARIANCE]
    groups = T.capture_day(frame)
    variants = [
        ('the bundled recipe', every, BASE, {}),
        ('without the initial window sizes', [f for f in every if f not in WINDOWS], BASE, {}),
        ('without them and fwd_seg_size_min', [f for f in every if f not in WINDOWS + ['fwd_seg_size_min']], BASE, {}),
        ('200 stumps', every, dict(BASE, max_depth=1, n_estimators=200), {}),
        ('rows 0.8, columns 0.5 per tree', every, BASE, dict(subsample=0.8, colsample_bytree=0.5)),
        ('minimum child weight 10', every, dict(BASE, min_child_weight=10), {}),
        ('L2 weight 10', every, BASE, dict(reg_lambda=10)),
    ]
    for name, features, params, extra in variants:
        x = T.preprocess(frame, features)
        prob = np.zeros(len(y))
        for train, test in GroupKFold(n_splits=5).split(x, y, groups):
            booster = xgb.train({**T.xgb_params(params), **extra}, xgb.DMatrix(x.iloc[train], label=y[train], missing=np.nan),
                                num_boost_round=params['n_estimators'])
            prob[test] = booster.predict(xgb.DMatrix(x.iloc[test], missing=np.nan))
        m = T.metrics(y, prob, T.youden_threshold(y, prob))
        print(f"{name:36s} roc_auc={m['roc_auc']:.4f} recall={m['recall']:.3f} "
              f"false_positive_rate={m['false_positive_rate']:.3f}", flush=True)


if __name__ == '__main__':
    main()
