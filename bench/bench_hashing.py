"""How much hashing costs: a DataFrame against its raw bytes, common values, a cache hit.

Target: ``hash_value`` of an 80 MB pandas DataFrame (10 float64 columns x 1M rows)
within 2x of xxh3_128 over the columns' raw buffers. Then the CPU time of
``hash_value`` on the values cells commonly read (builtins, arrays, a fitted
scikit-learn pipeline, a matplotlib figure), next to what ``cloudpickle.dumps``
of the same value costs: generic objects used to be hashed through that pickle.
The DataFrame figure goes to ``bench/out/bench_hashing.json`` as a row (``bench/report.py``
decides "met"); the others are printed for reading: they have no target.

Usage: ``python bench/bench_hashing.py [--values-only] [--quick]``
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The journal's background compaction would fold thousands of cache_hit events into
# DuckDB while we time, competing for the GIL: measure the lookup path alone.
os.environ.setdefault("KERNELFLOW_COMPACT_SECONDS", "3600")

import numpy as np
import pandas as pd
import xxhash

from kernelflow.hashing import hash_value
from kernelflow.settings import use_home
from kernelflow.store import cache_index

SECTION = "Hashing (bench/bench_hashing.py)"

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import row, write_rows  # bench/ is not a package


def median_seconds(
    fn: Callable[[], object], repeat: int, clock: Callable[[], float] = time.perf_counter
) -> float:
    fn()  # warm up: imports, page faults
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


@dataclasses.dataclass
class Record:
    """A row as a notebook defines one (in __main__ when this file runs as a script)."""

    id: int
    name: str
    score: float


def common_values() -> dict[str, object]:
    """Values a notebook cell commonly reads, built the same way on every run."""
    rng = np.random.default_rng(0)
    values: dict[str, object] = {
        "int": 12345,
        "small dict": {"lr": 0.01, "epochs": 10, "layers": [64, 32], "name": "run"},
        "100k floats (list)": rng.standard_normal(100_000).tolist(),
        "10k str->int (dict)": {f"key{i}": i for i in range(10_000)},
        "10k str (set)": {f"item{i}" for i in range(10_000)},
        "10k records (list of dicts)": [
            {"id": i, "name": f"n{i}", "score": i / 7, "tags": ["a", "b"]} for i in range(10_000)
        ],
        "100k pairs (list of tuples)": [(i, i * 0.5) for i in range(100_000)],
        # Each list is numbered (to tell [a, a] from [a, copy(a)]): the worst case.
        "100k pairs (list of lists)": [[i, i * 0.5] for i in range(100_000)],
        "10k dataclass objects": [Record(i, f"n{i}", i / 7) for i in range(10_000)],
        "8 MB ndarray": rng.standard_normal(1_000_000),
    }
    try:
        from sklearn.datasets import make_classification
        from sklearn.decomposition import PCA
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x, y = make_classification(n_samples=2000, n_features=50, random_state=0)
        values["sklearn Pipeline (fitted)"] = make_pipeline(
            StandardScaler(), PCA(10), LogisticRegression()
        ).fit(x, y)
    except ImportError:
        pass
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 2)
        for ax in axes.flat:
            ax.plot(rng.standard_normal(1000), label="noise")
            ax.legend()
        values["matplotlib figure (4 axes)"] = fig
    except ImportError:
        pass
    return values


def bench_values() -> None:
    import cloudpickle

    print(f"{'value':<30} {'hash_value':>12} {'cloudpickle':>12}   (median CPU time)")
    for label, value in common_values().items():
        hash_s = median_seconds(lambda v=value: hash_value(v), 7, time.process_time)
        pickle_s = median_seconds(lambda v=value: cloudpickle.dumps(v), 7, time.process_time)
        print(f"{label:<30} {hash_s * 1e3:9.3f} ms {pickle_s * 1e3:9.3f} ms")


def main() -> None:
    if "--values-only" in sys.argv:
        bench_values()
        return
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"c{i}": rng.standard_normal(1_000_000) for i in range(10)})
    buffers = [frame[name].to_numpy() for name in frame.columns]

    def raw() -> str:
        hasher = xxhash.xxh3_128()
        for buffer in buffers:
            hasher.update(buffer)
        return hasher.hexdigest()

    # Interleaved, and in CPU time as well as wall time: on a shared machine both
    # sides then see the same noise.
    raw(), hash_value(frame)
    samples: dict[str, list[float]] = {
        "raw wall": [],
        "ours wall": [],
        "raw cpu": [],
        "ours cpu": [],
    }
    quick = "--quick" in sys.argv
    for _ in range(5 if quick else 21):
        for label, fn in (("raw", raw), ("ours", lambda: hash_value(frame))):
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            samples[f"{label} cpu"].append(time.process_time() - cpu)
            samples[f"{label} wall"].append(time.perf_counter() - wall)
    size_mb = frame.memory_usage().sum() / 1e6
    again = "; 5 repeats only (--quick)" if quick else ""
    path = write_rows(
        __file__,
        [
            row(
                SECTION,
                f"hash_value() of a {size_mb:.0f} MB DataFrame (10 float64 columns)",
                "ms CPU",
                [x * 1e3 for x in samples["ours cpu"]],
                {"ratio_max": 2.0},
                baseline_name="xxh3_128 over its raw column buffers",
                baseline=[x * 1e3 for x in samples["raw cpu"]],
                notes=f"CPU time, the two sides interleaved{again}",
            )
        ],
    )
    m = {label: statistics.median(values) for label, values in samples.items()}
    print(f"DataFrame {size_mb:.0f} MB: raw xxh3_128 {m['raw cpu'] * 1e3:.2f} ms CPU, "
          f"hash_value {m['ours cpu'] * 1e3:.2f} ms CPU; rows in {path}")  # fmt: skip

    with tempfile.TemporaryDirectory() as home:
        previous = use_home(home)
        try:
            cache_index.store(
                "bench-key", {"rows": 3}, task_name="t", expires=None, task_run_id=None, duration=1
            )
            n = 5000

            def hits() -> None:
                for _ in range(n):
                    cache_index.lookup("bench-key")

            wall_s = median_seconds(hits, 5)
            # CPU time too: on a busy machine wall time mostly measures waiting for a CPU.
            cpu_s = median_seconds(hits, 5, time.process_time)
        finally:
            use_home(previous)
    print(f"cache hit of a small value (lookup + verified read + journal event): "
          f"{wall_s / n * 1e6:.0f} us wall, {cpu_s / n * 1e6:.0f} us CPU")  # fmt: skip
    print()
    bench_values()


if __name__ == "__main__":
    main()
