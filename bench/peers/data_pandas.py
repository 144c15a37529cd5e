"""Peer for bench/data.ts: pandas reads flights-3m from CSV (pyarrow is not installed, so no
Parquet), derives hour, minute, weekday, day, month and late = delay > 15, and encodes origin and
destination as category codes, ending with numpy arrays as a learner would take them.
Prints one JSON line: {version, rows, readMs, featuresMs, totalMs}."""
import json
import sys
import time

import numpy as np
import pandas as pd

path = sys.argv[1]
t0 = time.perf_counter()
df = pd.read_csv(path, parse_dates=["date"])
t1 = time.perf_counter()
d = df["date"].dt
# DuckDB's dayofweek is Sunday = 0; pandas' dayofweek is Monday = 0.
arrays = {
    "hour": d.hour.to_numpy(np.float64),
    "minute": d.minute.to_numpy(np.float64),
    "weekday": ((d.dayofweek + 1) % 7).to_numpy(np.float64),
    "day": d.day.to_numpy(np.float64),
    "month": d.month.to_numpy(np.float64),
    "distance": df["distance"].to_numpy(np.float64),
    "origin": df["origin"].astype("category").cat.codes.to_numpy(np.int32),
    "destination": df["destination"].astype("category").cat.codes.to_numpy(np.int32),
    "late": (df["delay"] > 15).to_numpy(np.float64),
}
t2 = time.perf_counter()
print(json.dumps({
    "version": pd.__version__,
    "rows": int(len(df)),
    "readMs": round((t1 - t0) * 1000),
    "featuresMs": round((t2 - t1) * 1000),
    "totalMs": round((t2 - t0) * 1000),
}))
