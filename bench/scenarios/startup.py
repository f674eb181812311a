"""The library's ``import`` alone, timed inside a fresh process; the heavy modules it loads.

(The whole fresh process, import + flow + exit, is ``sequential.py --n 0``.)
"""

import os
import sys
import time

HEAVY = ("duckdb", "pandas", "pyarrow")

if __name__ == "__main__":
    start = time.perf_counter()
    __import__(os.environ.get("BENCH_API", "kernelflow"))
    took = time.perf_counter() - start
    heavy = [m for m in HEAVY if m in sys.modules]
    from _api import report

    report(import_s=took, heavy_modules=heavy)
