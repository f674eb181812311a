"""A detached compaction: ``python -m kernelflow.store.detached`` folds the store, then exits.

Started by :func:`kernelflow.store.compactor.start_detached_compaction`, in its
own session, so a short script or a slow query need not wait for the fold. Its
own module, not ``-m kernelflow.store.compactor``: the package imports the
compactor, and running an imported module as ``__main__`` would load it twice.
"""

from __future__ import annotations

import sys

from kernelflow.store.compactor import compact_quietly

if __name__ == "__main__":
    sys.exit(0 if compact_quietly("detached") else 1)
