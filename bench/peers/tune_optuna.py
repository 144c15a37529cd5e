"""Optuna peer for bench/tune.ts: median ms for TPESampler to suggest a 10-d trial after N trials.

usage: /usr/bin/python3 tune_optuna.py N REPEATS DIM  → prints {"median_ms": …}
"""
import json
import random
import sys
import time

import optuna

n, repeats, dim = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.WARNING)
rng = random.Random(12345)
dist = optuna.distributions.FloatDistribution(-5, 5)
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
trials = []
for i in range(n):
    params = {f"x{d}": rng.uniform(-5, 5) for d in range(dim)}
    trials.append(
        optuna.trial.create_trial(
            params=params,
            distributions={k: dist for k in params},
            value=sum(v * v for v in params.values()),
        )
    )
study.add_trials(trials)
times = []
for _ in range(repeats):
    t0 = time.perf_counter()
    trial = study.ask()
    params = {f"x{d}": trial.suggest_float(f"x{d}", -5, 5) for d in range(dim)}
    times.append((time.perf_counter() - t0) * 1000)
    study.tell(trial, sum(v * v for v in params.values()))
times.sort()
print(json.dumps({"median_ms": times[len(times) // 2]}))
