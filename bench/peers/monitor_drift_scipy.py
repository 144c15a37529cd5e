"""scipy's per-feature drift on the same data as bench/monitor.ts: ks_2samp and
wasserstein_distance (normed by the reference std, as Evidently does) for every feature.
argv: ref.f64 cur.f64 n_ref n_cur n_features (column-major float64 files)."""
import json
import sys
import time

import numpy as np
from scipy.stats import ks_2samp, wasserstein_distance

ref_path, cur_path, n_ref, n_cur, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ref = np.fromfile(ref_path, dtype=np.float64).reshape(k, n_ref)
cur = np.fromfile(cur_path, dtype=np.float64).reshape(k, n_cur)
t = time.perf_counter()
ks = [float(ks_2samp(ref[j], cur[j]).pvalue) for j in range(k)]
ks_s = time.perf_counter() - t
t = time.perf_counter()
w = [float(wasserstein_distance(ref[j], cur[j]) / max(np.std(ref[j]), 0.001)) for j in range(k)]
w_s = time.perf_counter() - t
print(json.dumps({"ks_seconds": ks_s, "wasserstein_seconds": w_s, "ks_pvalues": ks, "wasserstein": w}))
