"""Peer runs for bench/gbdt.ts: XGBoost `hist` and sklearn HistGradientBoostingClassifier on
the same binary files the kiln run reads. Prints one JSON line: fit seconds, peak RSS, test AUC.

usage: /usr/bin/python3 bench/peers/gbdt_peers.py {xgboost|sklearn} DATA_DIR TREES LEAVES DEPTH LR THREADS
"""
import json
import os
import resource
import sys
import time

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb():
    """Peak resident memory of this process. VmHWM starts afresh at exec; ru_maxrss carries
    over from the parent (the bench's node process, large when it prepared the data)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load(data_dir, split):
    meta = json.load(open(os.path.join(data_dir, "meta.json")))
    n = meta[split + "_rows"]
    cols = {}
    for name in meta["numeric"]:
        cols[name] = np.fromfile(os.path.join(data_dir, f"{split}.{name}.f64"), dtype=np.float64, count=n)
    for name in meta["categorical"]:
        codes = np.fromfile(os.path.join(data_dir, f"{split}.{name}.i32"), dtype=np.int32, count=n)
        levels = meta["levels"][name]
        cols[name] = pd.Categorical.from_codes(codes, categories=levels)
    x = pd.DataFrame(cols)[meta["features"]]
    y = np.fromfile(os.path.join(data_dir, f"{split}.label.f64"), dtype=np.float64, count=n)
    return x, y, meta


def main():
    peer, data_dir = sys.argv[1], sys.argv[2]
    trees, leaves, depth, lr, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
    x_train, y_train, meta = load(data_dir, "train")
    x_test, y_test, _ = load(data_dir, "test")
    if peer == "xgboost":
        import xgboost as xgb

        model = xgb.XGBClassifier(
            tree_method="hist",
            enable_categorical=True,
            n_estimators=trees,
            max_depth=depth,
            max_leaves=leaves,
            learning_rate=lr,
            n_jobs=threads,
            max_bin=256,
        )
        t0, c0 = time.perf_counter(), cpu_seconds()
        model.fit(x_train, y_train)
        fit_s, fit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        version = xgb.__version__
    elif peer == "sklearn":
        import sklearn
        from sklearn.ensemble import HistGradientBoostingClassifier

        os.environ["OMP_NUM_THREADS"] = str(threads)
        cat_mask = [f in meta["categorical"] for f in meta["features"]]
        # sklearn wants categorical features as small non-negative codes (< max_bins).
        for name in meta["categorical"]:
            x_train[name] = x_train[name].cat.codes.astype(np.float64).replace(-1, np.nan)
            x_test[name] = x_test[name].cat.codes.astype(np.float64).replace(-1, np.nan)
        model = HistGradientBoostingClassifier(
            max_iter=trees,
            max_leaf_nodes=leaves,
            max_depth=depth,
            learning_rate=lr,
            categorical_features=cat_mask,
            early_stopping=False,
            max_bins=255,
        )
        t0, c0 = time.perf_counter(), cpu_seconds()
        model.fit(x_train, y_train)
        fit_s, fit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
        version = sklearn.__version__
    else:
        raise SystemExit(f"unknown peer {peer}")
    p = model.predict_proba(x_test)[:, 1]
    auc = roc_auc_score(y_test, p)
    peak_mb = peak_rss_mb()
    print(json.dumps({"peer": peer, "version": version, "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "peak_mb": peak_mb, "auc": auc}))


if __name__ == "__main__":
    main()
