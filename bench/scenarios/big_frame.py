"""Scenario 5: an 80 MB DataFrame (1M rows x 10 float64 columns) from a cached task.

Phase ``fill`` computes and caches it; phase ``hit`` is a new process that imports
everything first, then times the one call that loads it back from the cache (``run.py``
runs both in the same home and checks that the two frames are the same). With
``BENCH_API=joblib`` the same two phases use ``joblib.Memory``: the baseline. The task
refuses to run in the hit phase, so a cache miss fails the scenario.
"""

import os
import sys
import time

import numpy as np
import pandas as pd
from _api import API, args, report

ROWS, COLS = 1_000_000, 10
PHASE = sys.argv[sys.argv.index("--phase") + 1] if "--phase" in sys.argv else ""


def make_frame(seed: int) -> pd.DataFrame:
    if PHASE == "hit":
        raise RuntimeError("cache missed: the frame was computed again in the hit phase")
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.random((ROWS, COLS)), columns=[f"c{i}" for i in range(COLS)])


if API == "joblib":
    import joblib

    frame = joblib.Memory(os.path.join(os.environ["BENCH_HOME"], "joblib"), verbose=0).cache(
        make_frame
    )

    def load() -> tuple[pd.DataFrame, float]:
        start = time.perf_counter()
        df = frame(0)
        return df, time.perf_counter() - start

else:
    from _api import flow, task, task_input_hash

    frame = task(cache_key_fn=task_input_hash)(make_frame)

    @flow
    def load() -> tuple[pd.DataFrame, float]:
        start = time.perf_counter()
        df = frame(0)
        return df, time.perf_counter() - start


if __name__ == "__main__":
    opts = args()
    if opts.phase not in ("fill", "hit"):
        raise SystemExit("run with --phase fill, then --phase hit in the same home")
    df, took = load()
    assert df.shape == (ROWS, COLS)
    report(
        **{f"{opts.phase}_s": took},
        mb=float(df.memory_usage(index=False).sum() / 1e6),
        checksum=float(df.to_numpy().sum()),
    )
