"""XGBoost peer for bench/tune-gbdt.ts: a random search of N trials over the same space as
examples/flights/tune.yaml, on the same train / validation / test matrices kiln trained on,
with no pruner or with kiln's ASHA rung rule.

usage: /usr/bin/python3 tune_gbdt_xgb.py DIR TRIALS ROUNDS THREADS SEED {none|asha} MIN_RESOURCE ETA REPORT_EVERY
  → prints one JSON line
DIR holds meta.json and one raw little-endian float64 file per column (train_*, valid_*, test_*);
categorical columns hold level codes (NaN = missing) and become pandas categoricals.

The asha rule is src/tune/pruners/successive-halving.ts's (Optuna's SuccessiveHalvingPruner,
minEarlyStoppingRate 0, no bootstrap): every REPORT_EVERY rounds the trial reports its
validation AUC; at rung k (round MIN_RESOURCE · ETA^k) the value joins the rung's record and
the trial goes on only if it is in the top 1/ETA of every value recorded at that rung so far.
As in kiln, a trial stopped at its last round still counts as pruned, and the best trial is
the best COMPLETE one.
"""
import json
import math
import os
import random
import resource
import sys
import time

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.metrics import roc_auc_score

d, trials, rounds, threads, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
pruning = sys.argv[6] if len(sys.argv) > 6 else "none"
min_resource, eta, report_every = (int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])) if pruning == "asha" else (0, 0, 0)
meta = json.load(open(os.path.join(d, "meta.json")))


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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


cpu0 = cpu_seconds()
t_load = time.perf_counter()
xt, yt = frame("train")
xv, yv = frame("valid")
xs, ys = frame("test")
dtrain = xgb.DMatrix(xt, label=yt, enable_categorical=True, nthread=threads)
dvalid = xgb.DMatrix(xv, label=yv, enable_categorical=True, nthread=threads)
dtest = xgb.DMatrix(xs, label=ys, enable_categorical=True, nthread=threads)
load_s = time.perf_counter() - t_load


def promotable(value, competing):
    """Top 1/eta of the rung's values (successive-halving.ts's promotable, maximising)."""
    idx = len(competing) // eta - 1
    if idx == -1:
        idx = 0
    s = sorted(competing)
    return value >= s[len(s) - 1 - idx]


class RungRule(xgb.callback.TrainingCallback):
    """Stops a trial at a rung unless its validation AUC is in the top 1/eta seen there."""

    def __init__(self, rungs):
        self.rungs = rungs  # rung -> values recorded by every trial so far (shared)
        self.rung = 0
        self.pruned = False

    def after_iteration(self, model, epoch, evals_log):
        done = epoch + 1
        if done % report_every != 0:
            return False
        value = evals_log["valid"]["auc"][-1]
        while True:
            if done < min_resource * eta ** self.rung:
                return False
            if math.isnan(value):
                self.pruned = True
                return True
            record = self.rungs.setdefault(self.rung, [])
            record.append(value)
            if not promotable(value, record):
                self.pruned = True
                return True
            self.rung += 1


rng = random.Random(seed)


def log_uniform(lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


best = None
pruned = 0
rungs = {}
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
    if pruning == "asha":
        rule = RungRule(rungs)
        booster = xgb.train(params, dtrain, num_boost_round=rounds, evals=[(dvalid, "valid")], callbacks=[rule], verbose_eval=False)
        if rule.pruned:
            pruned += 1
            continue
    else:
        booster = xgb.train(params, dtrain, num_boost_round=rounds)
    auc = float(roc_auc_score(yv, booster.predict(dvalid)))
    if best is None or auc > best["auc"]:
        best = {"trial": i, "auc": auc, "booster": booster, "params": {k: params[k] for k in ("eta", "max_leaves", "min_child_weight", "colsample_bytree", "lambda", "max_cat_threshold")}}
search_s = time.perf_counter() - t0
test_auc = float(roc_auc_score(ys, best["booster"].predict(dtest))) if best else None
print(json.dumps({
    "peer": "xgboost random search" + (" + ASHA rung rule (TrainingCallback)" if pruning == "asha" else ", no pruner"),
    "version": xgb.__version__,
    "trials": trials,
    "complete": trials - pruned,
    "pruned": pruned,
    "pruned_share": pruned / trials,
    "best_trial": best["trial"] if best else None,
    "best_valid_auc": best["auc"] if best else None,
    "best_test_auc": test_auc,
    "best_params": best["params"] if best else None,
    "load_seconds": load_s,
    "search_seconds": search_s,
    "cpu_seconds": cpu_seconds() - cpu0,
}))
