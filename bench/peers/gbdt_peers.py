"""Peer runs for bench/gbdt.ts: XGBoost `hist` (depth-wise and lossguide growth) and sklearn
HistGradientBoostingClassifier on the same binary files the kiln run reads. A training mode
prints one JSON line (fit seconds, CPU seconds, peak RSS, its regularisation) and writes its
test-set probabilities to DATA_DIR/pred.<peer>.f64; the `score` mode is the benchmark's one AUC
function: sklearn's roc_auc_score over every prediction file, printed as {file: auc}.

usage: /usr/bin/python3 bench/peers/gbdt_peers.py {xgboost-depthwise|xgboost-lossguide|sklearn} DATA_DIR TREES LEAVES DEPTH LR THREADS
       /usr/bin/python3 bench/peers/gbdt_peers.py score DATA_DIR PRED_FILE...
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


def score(data_dir, files):
    meta = json.load(open(os.path.join(data_dir, "meta.json")))
    n = meta["test_rows"]
    y = np.fromfile(os.path.join(data_dir, "test.label.f64"), dtype=np.float64, count=n)
    out = {}
    for f in files:
        p = np.fromfile(f, dtype=np.float64)
        if p.shape[0] != n:
            raise SystemExit(f"{f}: {p.shape[0]} predictions for {n} test rows")
        out[f] = float(roc_auc_score(y, p))
    print(json.dumps(out))


def main():
    peer, data_dir = sys.argv[1], sys.argv[2]
    if peer == "score":
        score(data_dir, sys.argv[3:])
        return
    trees, leaves, depth, lr, threads = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
    x_train, y_train, meta = load(data_dir, "train")
    x_test, y_test, _ = load(data_dir, "test")
    if peer in ("xgboost-depthwise", "xgboost-lossguide"):
        import xgboost as xgb

        # XGBoost's own regularisation defaults, stated so the bench prints them beside the figures.
        reg_lambda, min_child_weight = 1.0, 1.0
        regularisation = f"lambda={reg_lambda:g}, min_child_weight={min_child_weight:g}"
        model = xgb.XGBClassifier(
            tree_method="hist",
            grow_policy="depthwise" if peer == "xgboost-depthwise" else "lossguide",
            reg_lambda=reg_lambda,
            min_child_weight=min_child_weight,
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
        regularisation = "l2_regularization=0, min_samples_leaf=20"
        model = HistGradientBoostingClassifier(
            l2_regularization=0.0,
            min_samples_leaf=20,
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
    p = np.ascontiguousarray(model.predict_proba(x_test)[:, 1], dtype=np.float64)
    predictions = os.path.join(data_dir, f"pred.{peer}.f64")
    p.tofile(predictions)
    peak_mb = peak_rss_mb()
    print(json.dumps({
        "peer": peer, "version": version, "regularisation": regularisation,
        "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu, "peak_mb": peak_mb,
        "auc": None, "predictions": predictions,
    }))


if __name__ == "__main__":
    main()
