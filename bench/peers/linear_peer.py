"""sklearn side of bench/linear.ts (run by /usr/bin/python3; the bench writes the data).

Reads the flights features the bench exported as raw little-endian arrays, fits
StandardScaler (numeric) + OneHotEncoder (origin, destination) + LogisticRegression(lbfgs),
and prints one JSON line with timings, iterations and test AUC.
"""
import json
import sys
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder, StandardScaler

warnings.filterwarnings('ignore', category=ConvergenceWarning)


def load(d, split, meta):
    n = meta[f'n_{split}']
    num = np.fromfile(f'{d}/{split}_numeric.f64', dtype='<f8').reshape(len(meta['numeric']), n).T
    cat = np.fromfile(f'{d}/{split}_categorical.i32', dtype='<i4').reshape(len(meta['categorical']), n).T
    y = np.fromfile(f'{d}/{split}_y.f64', dtype='<f8')
    return num, cat, y


def main():
    d = sys.argv[1]
    with open(f'{d}/meta.json') as f:
        meta = json.load(f)
    num_tr, cat_tr, y_tr = load(d, 'train', meta)
    num_te, cat_te, y_te = load(d, 'test', meta)
    t0 = time.perf_counter()
    scaler = StandardScaler().fit(num_tr)
    enc = OneHotEncoder(handle_unknown='ignore').fit(cat_tr)
    x_tr = sp.hstack([sp.csr_matrix(scaler.transform(num_tr)), enc.transform(cat_tr)], format='csr')
    t1 = time.perf_counter()
    model = LogisticRegression(C=meta['C'], solver='lbfgs', max_iter=meta['max_iter'], tol=meta['tol'])
    model.fit(x_tr, y_tr)
    t2 = time.perf_counter()
    x_te = sp.hstack([sp.csr_matrix(scaler.transform(num_te)), enc.transform(cat_te)], format='csr')
    p = model.predict_proba(x_te)[:, 1]
    print(json.dumps({
        'preprocess_s': t1 - t0,
        'fit_s': t2 - t1,
        'iterations': int(model.n_iter_[0]),
        'n_features': int(x_tr.shape[1]),
        'auc': float(roc_auc_score(y_te, p)),
        'sklearn': __import__('sklearn').__version__,
    }))


main()
