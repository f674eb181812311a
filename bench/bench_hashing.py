"""How much hashing a DataFrame costs over hashing its raw bytes, and what a cache hit costs.

Target: ``hash_value`` of an 80 MB pandas DataFrame (10 float64 columns x 1M rows)
within 2x of xxh3_128 over the columns' raw buffers. Prints figures; not a
timed test, so a busy machine cannot fail the suite.

Usage: ``python bench/bench_hashing.py``
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import xxhash

from kernelflow import cache_index
from kernelflow.hashing import hash_value
from kernelflow.settings import use_home

TARGET_RATIO = 2.0


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up: imports, page faults
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"c{i}": rng.standard_normal(1_000_000) for i in range(10)})
    buffers = [frame[name].to_numpy() for name in frame.columns]

    def raw() -> str:
        hasher = xxhash.xxh3_128()
        for buffer in buffers:
            hasher.update(buffer)
        return hasher.hexdigest()

    raw_s = median_seconds(raw, 21)
    ours_s = median_seconds(lambda: hash_value(frame), 21)
    ratio = ours_s / raw_s
    verdict = "ok" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(f"DataFrame {frame.memory_usage().sum() / 1e6:.0f} MB: raw xxh3_128 {raw_s * 1e3:.2f} ms")
    print(f"hash_value(frame) {ours_s * 1e3:.2f} ms; ratio {ratio:.2f} (target <= 2): {verdict}")

    with tempfile.TemporaryDirectory() as home:
        previous = use_home(home)
        try:
            cache_index.store(
                "bench-key", {"rows": 3}, task_name="t", expires=None, task_run_id=None, duration=1
            )
            n = 5000
            hit_s = median_seconds(lambda: [cache_index.lookup("bench-key") for _ in range(n)], 5)
        finally:
            use_home(previous)
    print(f"cache hit of a small value (lookup + verified read + journal event): "
          f"{hit_s / n * 1e6:.0f} us")  # fmt: skip


if __name__ == "__main__":
    main()
