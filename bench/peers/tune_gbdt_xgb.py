"""XGBoost peer for bench/tune-gbdt.ts: a random search of N trials over the same space as
examples/flights/tune.yaml, on the same train / validation matrices kiln trained on.

usage: /usr/bin/python3 tune_gbdt_xgb.py DIR TRIALS ROUNDS THREADS SEED  → prints JSON
DIR holds meta.json and one raw little-endian float64 file per column (train_*.f64, valid_*.f64);
categorical columns hold level codes (NaN = missing) and become pandas categoricals.
"""
import json
import math
import os
import random
import sys
import time

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

d, trials, rounds, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
meta = json.load(open(os.path.join(d, "meta.json")))


def frame(part):
    cols = {}
    for c in meta["columns"]:
        v = np.fromfile(os.path.join(d, f"{part}_{c['name']}.f64"), dtype="<f8")
        if c["kind"] == "categorical":
            codes = np.where(np.isnan(v), -1, v).astype(np.int32)
            cols[c["name"]] = pd.Categorical.from_codes(codes, categories=list(range(c["levels"])))
        else:
            cols[c["name"]] = v
    y = np.fromfile(os.path.join(d, f"{part}_label.f64"), dtype="<f8")
    return pd.DataFrame(cols), y


t_load = time.perf_counter()
xt, yt = frame("train")
xv, yv = frame("valid")
dtrain = xgb.DMatrix(xt, label=yt, enable_categorical=True, nthread=threads)
dvalid = xgb.DMatrix(xv, label=yv, enable_categorical=True, nthread=threads)
load_s = time.perf_counter() - t_load

rng = random.Random(seed)


def log_uniform(lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


best = None
t0 = time.perf_counter()
for i in range(trials):
    # The kiln space, in XGBoost's names: min_data_in_leaf ≈ min_child_weight / p(1 − p) at p ≈ 0.15.
    params = {
        "objective": "binary:logistic",
        "tree_method": "hist",
        "grow_policy": "lossguide",
        "max_depth": 0,
        "max_bin": 255,
        "nthread": threads,
        "eval_metric": "auc",
        "eta": log_uniform(0.02, 0.3),
        "max_leaves": int(round(log_uniform(4, 128))),
        "min_child_weight": log_uniform(10, 400) * 0.1275,
        "colsample_bytree": rng.uniform(0.5, 1.0),
        "lambda": log_uniform(0.001, 10),
        "max_cat_threshold": rng.choice([8, 16, 32, 64]),
        "seed": seed,
    }
    booster = xgb.train(params, dtrain, num_boost_round=rounds)
    auc = float(roc_auc_score(yv, booster.predict(dvalid)))
    if best is None or auc > best["auc"]:
        best = {"trial": i, "auc": auc, "params": {k: params[k] for k in ("eta", "max_leaves", "min_child_weight", "colsample_bytree", "lambda", "max_cat_threshold")}}
wall = time.perf_counter() - t0
print(json.dumps({
    "peer": "xgboost random search",
    "version": xgb.__version__,
    "trials": trials,
    "pruned_share": 0.0,
    "best_valid_auc": best["auc"],
    "best_params": best["params"],
    "wall_seconds": wall,
    "load_seconds": load_s,
}))
