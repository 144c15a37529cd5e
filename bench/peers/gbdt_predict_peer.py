"""XGBoost side of bench/gbdt-predict.ts: scores kiln's own trees (written as XGBoost 1.7 JSON by
src/learn/gbdt/xgboost-json.ts) on the same rows, timing inside Python. Prints one JSON line.

usage: /usr/bin/python3 bench/peers/gbdt_predict_peer.py DATA_DIR THREADS REPEATS SINGLE_ROWS

DATA_DIR holds model.json, x.f32 (row-major float32, categorical codes with NaN for missing),
meta.json ({rows, names, levels}); the script writes xgb_pred.f64 (probabilities) for the
correctness check.
"""
import json
import os
import sys
import time

import numpy as np
import pandas as pd
import xgboost as xgb


def main():
    data_dir, threads, repeats, single_rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    meta = json.load(open(os.path.join(data_dir, "meta.json")))
    x = np.fromfile(os.path.join(data_dir, "x.f32"), dtype=np.float32).reshape(meta["rows"], -1)
    cols = {}
    for j, name in enumerate(meta["names"]):
        n_levels = meta["levels"][j]
        if n_levels:
            codes = np.where(np.isnan(x[:, j]), -1, x[:, j]).astype(np.int64)
            cols[name] = pd.Categorical.from_codes(codes, categories=list(range(n_levels)))
        else:
            cols[name] = x[:, j]
    df = pd.DataFrame(cols)
    booster = xgb.Booster()
    booster.load_model(os.path.join(data_dir, "model.json"))
    booster.set_param({"nthread": threads})

    # Batch: inplace_predict on the DataFrame (XGBoost's fastest path; no DMatrix copy).
    pred = booster.inplace_predict(df)
    pred.astype(np.float64).tofile(os.path.join(data_dir, "xgb_pred.f64"))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        booster.inplace_predict(df)
        times.append(time.perf_counter() - t0)
    batch_s = float(np.median(times))

    # Single rows: one-row frames prepared up front so only the predict call is timed.
    rows = [df.iloc[i : i + 1] for i in range(min(single_rows, len(df)))]
    for r in rows[:200]:
        booster.inplace_predict(r)
    lat = []
    for r in rows:
        t0 = time.perf_counter()
        booster.inplace_predict(r)
        lat.append(time.perf_counter() - t0)
    lat_us = np.array(lat) * 1e6
    print(
        json.dumps(
            {
                "peer": "xgboost",
                "version": xgb.__version__,
                "batch_seconds": batch_s,
                "rows_per_second": len(df) / batch_s,
                "single_p50_us": float(np.percentile(lat_us, 50)),
                "single_p99_us": float(np.percentile(lat_us, 99)),
            }
        )
    )


if __name__ == "__main__":
    main()
