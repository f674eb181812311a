"""Run one example program as ``__main__`` and record how it ended.

``python _run_example.py PROGRAM REPORT``: runs PROGRAM as a script would run
(its directory first on ``sys.path``, ``__name__ == "__main__"``), and writes
REPORT, a JSON object ``{"exception": null}`` or ``{"exception": {"type":
..., "module": ..., "message": ...}}`` for an exception that escaped the
program. The traceback still goes to stderr and the exit code is 1, as
Python's own would be. Standard library only: it runs in Prefect's venv and in
kernelflow's alike.
"""

from __future__ import annotations

import json
import runpy
import sys
import traceback
from pathlib import Path


def main() -> int:
    program, report = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
    sys.argv = [str(program)]
    sys.path.insert(0, str(program.parent))
    record: dict = {"exception": None}
    code = 0
    try:
        runpy.run_path(str(program), run_name="__main__")
    except SystemExit as exc:  # the program's own exit code
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException as exc:
        traceback.print_exc()
        kind = type(exc)
        record["exception"] = {
            "type": kind.__qualname__,
            "module": kind.__module__,
            "message": str(exc),
        }
        code = 1
    finally:
        sys.stdout.flush()
        report.write_text(json.dumps(record))
    return code


if __name__ == "__main__":
    sys.exit(main())
