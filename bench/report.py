"""Run ``make bench``'s scripts and write ``bench/RESULTS.md`` whole from their rows.

Every benchmark script writes its figures to ``bench/out/<script-name>.json`` as
``{"rows": [ROW, ...]}`` (see :func:`check_row` for a row's fields), and never decides
whether a target is met: this file does, by one set of rules (:func:`verdict`):

- the figure is the median of the repeats;
- a zero, negative or non-finite sample makes the row ``no (invalid)``;
- a row that says what the same process costs with no work (``zero_work``) is
  ``no (invalid)`` when its median with the work is not above the median without, and
  ``no (noise)`` when the two spreads overlap: the figure cannot be told from the fixed cost;
- a target is ``yes`` only when the spread of the repeats stays on the right side of the
  boundary, ``no (noise)`` when the spread straddles it, ``no`` when it is wholly on the
  wrong side. The spread is min to max, or the 10th to 90th percentile from 10 repeats on.
  For a ratio, sides with as many repeats each are taken as pairs (the i-th of each, run
  in turns, so they saw the same load) and the spread is that of the per-pair ratios;
  otherwise it is the worst kernelflow repeat against the best baseline one and back.

Usage::

    python bench/report.py --run bench/run.py bench/bench_kernel.py ... [--quick]
    python bench/report.py            # only rewrite RESULTS.md from bench/out/

With ``--run`` each script runs in its own process group, one after another (a missing,
failing or hung script does not stop the others: it is listed as "not run: <reason>"),
with its wall time and the load average before and after; then RESULTS.md is written.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
RESULTS = BENCH / "RESULTS.md"
#: What ``--run`` recorded about the last run: scripts, wall times, load, quick or not.
MANIFEST_NAME = "_manifest.json"
#: A bound on one script, so a hung benchmark cannot hang ``make bench``.
SCRIPT_TIMEOUT_S = 15 * 60
TARGET_KINDS = ("ratio_max", "max", "flat_within")


class RowError(ValueError):
    """A row that does not follow the format; the message names the field to fix."""


# ---------------------------------------------------------------------------------------
# Rows: what a script writes (these helpers are for the scripts; the format is the contract)


def row(
    section: str,
    label: str,
    unit: str,
    kernelflow: list[float],
    target: dict[str, float],
    *,
    n: int | None = None,
    baseline_name: str | None = None,
    baseline: list[float] | None = None,
    notes: str = "",
    zero_work: dict[str, Any] | None = None,
    baseline_zero_work: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one contract row, checked (:func:`check_row`).

    Parameters
    ----------
    section, label, unit
        Which table the row goes to, what it measures, and the unit of its figures.
    kernelflow
        Every repeat's figure.
    target
        ``{"ratio_max": r}`` (kernelflow / baseline <= r), ``{"max": m}`` (kernelflow <= m)
        or ``{"flat_within": f}`` (rows of one section and label at several ``n``: the
        largest median over the smallest <= f).
    n
        The size of the work, if it has one.
    baseline_name, baseline
        What kernelflow is compared with, and every repeat of its figure.
    notes
        How the figure was measured, where it is not obvious.
    zero_work, baseline_zero_work
        ``{"unit": str, "gross": [...], "zero": [...]}``: the measurement with the work and
        the same one with no work (a process that runs no task), per repeat, from which the
        figure was derived. Lets the report refuse a figure lost in the fixed cost.

    Returns
    -------
    dict
        The row, ready for :func:`write_rows`.

    Examples
    --------
    >>> row("startup", "import", "ms", [30.0, 31.0, 29.5], {"max": 150})["target"]
    {'max': 150}
    """
    built: dict[str, Any] = {
        "section": section,
        "label": label,
        "n": n,
        "unit": unit,
        "kernelflow": [float(x) for x in kernelflow],
        "baseline_name": baseline_name,
        "baseline": None if baseline is None else [float(x) for x in baseline],
        "target": dict(target),
        "notes": notes,
    }
    if zero_work is not None:
        built["zero_work"] = zero_work
    if baseline_zero_work is not None:
        built["baseline_zero_work"] = baseline_zero_work
    check_row(built)
    return built


def write_rows(script: str | Path, rows: list[dict[str, Any]]) -> Path:
    """Write ``rows`` to ``bench/out/<script-name>.json``; return that path.

    ``script`` is the script's path or name (``__file__`` does).
    """
    for each in rows:
        check_row(each)
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{Path(script).stem}.json"
    path.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    return path


def _samples(value: Any, name: str, required: bool) -> list[float] | None:
    if value is None and not required:
        return None
    if not isinstance(value, list) or not value:
        raise RowError(f"{name} must be a non-empty list of numbers, got {value!r}")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise RowError(f"{name} must hold only numbers, got {value!r}")
    return [float(x) for x in value]


def check_row(candidate: Any) -> None:
    """Raise :class:`RowError` unless ``candidate`` follows the row format.

    A row is a dict with ``section`` (str), ``label`` (str), ``n`` (int or null),
    ``unit`` (str), ``kernelflow`` (non-empty list of numbers: every repeat),
    ``baseline_name`` (str or null), ``baseline`` (list of numbers or null), ``target``
    (one of ``{"ratio_max": x}``, ``{"max": x}``, ``{"flat_within": x}``) and ``notes``
    (str); optionally ``zero_work`` and ``baseline_zero_work`` (see :func:`row`).
    Numbers are checked for type here; their values (zero, negative) are judged by
    :func:`verdict`, which reports them rather than refusing the file.
    """
    if not isinstance(candidate, dict):
        raise RowError(f"a row must be an object, got {type(candidate).__name__}")
    for key in ("section", "label", "unit", "notes"):
        if not isinstance(candidate.get(key), str):
            raise RowError(f"row field {key!r} must be a string, got {candidate.get(key)!r}")
    if candidate.get("n") is not None and (
        not isinstance(candidate["n"], int) or isinstance(candidate["n"], bool)
    ):
        raise RowError(f"row field 'n' must be an integer or null, got {candidate['n']!r}")
    _samples(candidate.get("kernelflow"), "kernelflow", required=True)
    _samples(candidate.get("baseline"), "baseline", required=False)
    name = candidate.get("baseline_name")
    if name is not None and not isinstance(name, str):
        raise RowError(f"row field 'baseline_name' must be a string or null, got {name!r}")
    target = candidate.get("target")
    if (
        not isinstance(target, dict)
        or len(target) != 1
        or next(iter(target)) not in TARGET_KINDS
        or not isinstance(next(iter(target.values())), int | float)
    ):
        raise RowError(
            f"row field 'target' must be one of {{'ratio_max': x}}, {{'max': x}}, "
            f"{{'flat_within': x}}, got {target!r}"
        )
    for key in ("zero_work", "baseline_zero_work"):
        extra = candidate.get(key)
        if extra is None:
            continue
        if not isinstance(extra, dict) or not isinstance(extra.get("unit"), str):
            raise RowError(
                f"row field {key!r} must be {{'unit': str, 'gross': [...], 'zero': [...]}}"
            )
        _samples(extra.get("gross"), f"{key}.gross", required=True)
        _samples(extra.get("zero"), f"{key}.zero", required=True)


# ---------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class Verdict:
    """Whether a row meets its target: ``met`` is the cell printed, ``value`` the figure
    compared with the target (a ratio, a median or a flatness), ``why`` a short reason."""

    met: str
    value: float | None
    why: str = ""


def _bad(samples: list[float]) -> bool:
    return any(not math.isfinite(x) or x <= 0 for x in samples)


def _zero_work(extra: dict[str, Any] | None, side: str) -> Verdict | None:
    """Refuse a figure that cannot be told from the same process doing no work."""
    if extra is None:
        return None
    gross, zero = [float(x) for x in extra["gross"]], [float(x) for x in extra["zero"]]
    unit = extra["unit"]
    if statistics.median(gross) <= statistics.median(zero):
        return Verdict(
            "no (invalid)",
            None,
            f"{side}: median with the work ({statistics.median(gross):.4g} {unit}) is not "
            f"above the no-work baseline ({statistics.median(zero):.4g} {unit})",
        )
    if _span(gross)[0] <= _span(zero)[1]:
        return Verdict(
            "no (noise)",
            None,
            f"{side}: with the work {min(gross):.4g} to {max(gross):.4g} {unit} overlaps the "
            f"no-work baseline {min(zero):.4g} to {max(zero):.4g} {unit}",
        )
    return None


def _span(values: list[float]) -> tuple[float, float]:
    """The spread of repeats: min to max, or the 10th to 90th percentile of 10 or more."""
    if len(values) >= 10:
        deciles = statistics.quantiles(values, n=10)
        return deciles[0], deciles[-1]
    return min(values), max(values)


def _against(boundary: float, best: float, worst: float, value: float) -> Verdict:
    """Verdict of a figure whose repeats span ``best``..``worst``, lower being better."""
    if worst <= boundary:
        return Verdict("yes", value)
    if best > boundary:
        return Verdict("no", value)
    return Verdict(
        "no (noise)",
        value,
        f"repeats span {best:.3g} to {worst:.3g}, across the target {boundary:g}",
    )


def verdict(candidate: dict[str, Any], group: list[dict[str, Any]] | None = None) -> Verdict:
    """Decide whether one row meets its target (the rules are in the module docstring).

    Parameters
    ----------
    candidate
        A row that passed :func:`check_row`.
    group
        For a ``flat_within`` target: every row of the same section, label and unit
        (``candidate`` included), one per ``n``.
    """
    ours = [float(x) for x in candidate["kernelflow"]]
    if _bad(ours):
        return Verdict("no (invalid)", None, "a kernelflow figure is zero, negative or not finite")
    refused = _zero_work(candidate.get("zero_work"), "kernelflow")
    if refused:
        return refused
    kind, boundary = next(iter(candidate["target"].items()))
    boundary = float(boundary)
    if kind == "max":
        return _against(boundary, *_span(ours), statistics.median(ours))
    if kind == "ratio_max":
        if not candidate.get("baseline"):
            return Verdict("no (invalid)", None, "a ratio target with no baseline figure")
        base = [float(x) for x in candidate["baseline"]]
        if _bad(base):
            return Verdict(
                "no (invalid)", None, "a baseline figure is zero, negative or not finite"
            )
        refused = _zero_work(candidate.get("baseline_zero_work"), "baseline")
        if refused:
            return refused
        ratio = statistics.median(ours) / statistics.median(base)
        if len(ours) == len(base):
            low, high = _span([a / b for a, b in zip(ours, base, strict=True)])
        else:
            low, high = min(ours) / max(base), max(ours) / min(base)
        return _against(boundary, low, high, ratio)
    # flat_within: the group's largest median over its smallest.
    members = group or [candidate]
    sizes = {m.get("n") for m in members}
    if len(members) < 2 or len(sizes) < 2 or None in sizes:
        return Verdict("no (invalid)", None, "flatness needs rows at two or more n")
    samples = [[float(x) for x in m["kernelflow"]] for m in members]
    if any(_bad(s) for s in samples):
        return Verdict("no (invalid)", None, "a figure of the group is zero or negative")
    for m in members:
        refused = _zero_work(m.get("zero_work"), f"kernelflow at n={m.get('n')}")
        if refused:
            return refused
    medians = [statistics.median(s) for s in samples]
    flatness = max(medians) / min(medians)
    worst = max(max(s) for s in samples) / min(min(s) for s in samples)
    best = max(1.0, max(min(s) for s in samples) / min(max(s) for s in samples))
    return _against(boundary, best, worst, flatness)


def _groups(rows: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for each in rows:
        if "flat_within" in each["target"]:
            groups.setdefault((each["section"], each["label"], each["unit"]), []).append(each)
    return groups


# ---------------------------------------------------------------------------------------
# Running the scripts


@dataclass
class ScriptRun:
    """What ``--run`` saw of one script."""

    script: str
    status: str  # "ok", or "not run: <reason>"
    wall_s: float | None = None
    load_before: float | None = None
    load_after: float | None = None


@dataclass
class Manifest:
    """One ``make bench`` run: its scripts in order, quick or not, load at both ends."""

    quick: bool
    started: str
    load_before: list[float]
    load_after: list[float] = field(default_factory=list)
    scripts: list[ScriptRun] = field(default_factory=list)

    def save(self, out: Path) -> None:
        """Write the manifest next to the rows."""
        out.mkdir(exist_ok=True)
        data = {**self.__dict__, "scripts": [s.__dict__ for s in self.scripts]}
        (out / MANIFEST_NAME).write_text(json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, out: Path) -> Manifest | None:
        """The manifest of the last ``--run``, or None if there is none."""
        path = out / MANIFEST_NAME
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        data["scripts"] = [ScriptRun(**s) for s in data["scripts"]]
        return cls(**data)


def _tail(text: str, lines: int = 1) -> str:
    last = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(last[-lines:])[:300]


def _echo(stream: Any, tail: collections.deque[str]) -> None:
    for line in stream:
        sys.stderr.write(line)
        tail.append(line)


def run_script(script: Path, quick: bool, out: Path, timeout: float) -> ScriptRun:
    """Run one benchmark script in its own process group; never raise for its failure."""
    name = str(script.relative_to(ROOT)) if script.is_relative_to(ROOT) else str(script)
    if not script.exists():
        return ScriptRun(name, "not run: the script does not exist")
    (out / f"{script.stem}.json").unlink(missing_ok=True)  # no figure from an earlier run
    argv = [sys.executable, str(script), *(["--quick"] if quick else [])]
    load_before = os.getloadavg()[0]
    print(f"== {name} {'--quick ' if quick else ''}(load {load_before:.1f})", file=sys.stderr)
    start = time.perf_counter()
    child = subprocess.Popen(
        argv, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    # Echo the script's stderr as it comes (progress of a long run) and keep its tail.
    tail: collections.deque[str] = collections.deque(maxlen=20)
    echo = threading.Thread(target=_echo, args=(child.stderr, tail), daemon=True)
    echo.start()
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        status = f"not run: timed out after {timeout:.0f} s (killed)"
    else:
        failed = f"exit {child.returncode}"
        echo.join(timeout=10)  # a leftover grandchild may hold the pipe: do not wait on it
        failed += f": {_tail(''.join(tail))}" if tail else ""
        status = "ok" if child.returncode == 0 else f"not run: {failed}"
    finally:
        if not echo.is_alive():
            child.stderr.close()
    wall = time.perf_counter() - start
    if status == "ok" and not (out / f"{script.stem}.json").exists():
        status = f"not run: it wrote no bench/out/{script.stem}.json"
    return ScriptRun(name, status, wall, load_before, os.getloadavg()[0])


def run_all(scripts: list[Path], quick: bool, out: Path, timeout: float) -> Manifest:
    """Run every script in turn; save and return the manifest of the run.

    Each script's earlier rows are deleted before it runs, and :func:`render` reads only
    the rows of the scripts in the manifest: RESULTS.md comes from this run alone.
    """
    out.mkdir(exist_ok=True)
    manifest = Manifest(quick=quick, started=_now(), load_before=list(os.getloadavg()))
    for script in scripts:
        manifest.scripts.append(run_script(script, quick, out, timeout))
        manifest.save(out)
    manifest.load_after = list(os.getloadavg())
    manifest.save(out)
    return manifest


# ---------------------------------------------------------------------------------------
# The header: machine, load, versions, commit


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ram_gib() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(name: str, paths: list[str] | None = None) -> str:
    from importlib import metadata

    try:
        if paths is None:
            return metadata.version(name)
        found = next(iter(metadata.distributions(name=name, path=paths)), None)
        return found.version if found else "not installed"
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(root: Path = ROOT) -> dict[str, str]:
    """Versions of the measured libraries (Prefect from the baseline venv ``.bench-venv``)."""
    bench_site = [str(p) for p in (root / ".bench-venv").glob("lib/python*/site-packages")]
    return {
        "python": platform.python_version(),
        "kernelflow": _version("kernelflow"),
        "duckdb": _version("duckdb"),
        "pyarrow": _version("pyarrow"),
        "prefect": _version("prefect", bench_site) if bench_site else "not installed",
    }


def commit(root: Path = ROOT) -> str:
    """``<short hash>`` plus whether the work tree has uncommitted changes (read-only git)."""

    def git(*argv: str) -> subprocess.CompletedProcess:
        # --no-optional-locks: reading the status must not rewrite the index under others.
        return subprocess.run(
            ["git", "--no-optional-locks", "-C", str(root), *argv],
            capture_output=True,
            text=True,
            check=False,
        )

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    return head.stdout.strip() + (" + uncommitted changes" if dirty else " (clean tree)")


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _load(values: list[float] | tuple[float, ...]) -> str:
    return ", ".join(f"{x:.2f}" for x in values)


def header(manifest: Manifest | None, now_load: tuple[float, ...], root: Path = ROOT) -> list[str]:
    """The lines at the top of RESULTS.md: run kind, date, machine, load, versions, commit."""
    quick = manifest is not None and manifest.quick
    before = _load(manifest.load_before) if manifest else "not recorded (no --run)"
    after = _load(manifest.load_after or now_load) if manifest else _load(now_load)
    lib = versions(root)
    if manifest is None:
        kind = "not recorded (written without --run, from the rows found in bench/out/)"
    elif quick:
        kind = "**QUICK** (`--quick`: small n, one repeat; a smoke test, not figures of record)"
    else:
        kind = "full"
    return [
        "# Benchmark results",
        "",
        "Written whole by `bench/report.py` from `bench/out/*.json` of one `make bench` run;",
        "do not edit by hand (`make bench` rewrites it, `make bench QUICK=1` for a smoke test).",
        "",
        f"- run: {kind}",
        f"- date: {manifest.started if manifest else _now()}",
        f"- machine: nproc {os.cpu_count()}, {_cpu_model()}, {_ram_gib()} RAM, "
        f"{platform.system()} {platform.release()}",
        f"- load average (1, 5, 15 min): before {before}; after {after}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in lib.items()),
        f"- commit: {commit(root)}",
    ]


# ---------------------------------------------------------------------------------------
# RESULTS.md


def _num(x: float) -> str:
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if x == 0 or abs(x) >= 0.001:
        return f"{x:.3g}"
    return f"{x:.2e}"


def _spread(samples: list[float] | None) -> str:
    if not samples:
        return ""
    med = _num(statistics.median(samples))
    if len(samples) == 1:
        return f"{med} (1 run)"
    return f"{med} ({_num(min(samples))} to {_num(max(samples))}, {len(samples)} runs)"


def _target(target: dict[str, float], unit: str) -> str:
    kind, x = next(iter(target.items()))
    if kind == "ratio_max":
        inverse = 1 / x if x > 0 else 0
        if 0 < x < 1 and abs(inverse - round(inverse, 2)) < 1e-6:
            return f"ratio ≤ 1/{round(inverse, 2):g}"  # 1/100, 1/1.7: as targets are set
        return f"ratio ≤ {x:.3g}"
    if kind == "max":
        return f"≤ {x:g} {unit}"
    return f"flat within {x:g}x over n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def load_rows(out: Path) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Rows of every ``out/*.json`` by script name, and the scripts whose file is unusable."""
    found: dict[str, list[dict[str, Any]]] = {}
    broken: dict[str, str] = {}
    for path in sorted(out.glob("*.json")):
        if path.name == MANIFEST_NAME:
            continue
        try:
            data = json.loads(path.read_text())
            rows = data["rows"] if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise RowError('the file must be {"rows": [...]}')
            for each in rows:
                check_row(each)
        except (json.JSONDecodeError, RowError, KeyError) as exc:
            broken[path.stem] = f"not run: bad output in {path.name}: {exc}"
            continue
        found[path.stem] = rows
    return found, broken


def render(out: Path = OUT, root: Path = ROOT) -> str:
    """RESULTS.md's whole text from ``out``'s rows and the manifest of the last run."""
    manifest = Manifest.load(out)
    found, broken = load_rows(out)
    lines = header(manifest, os.getloadavg(), root)

    lines += ["", "## Scripts", "", "| script | status | wall | load before → after | rows |"]
    lines.append("|---|---|---|---|---|")
    listed: set[str] = set()  # the scripts whose rows are shown
    for run in manifest.scripts if manifest else []:
        stem = Path(run.script).stem
        if run.status == "ok":  # a script that failed half-way: no partial figures
            listed.add(stem)
        status = broken.get(stem, run.status)
        wall = f"{run.wall_s:.0f} s" if run.wall_s is not None else ""
        load = (
            f"{run.load_before:.2f} → {run.load_after:.2f}" if run.load_before is not None else ""
        )
        count = len(found.get(stem, [])) if status == "ok" else 0
        lines.append(f"| `{run.script}` | {_cell(status)} | {wall} | {load} | {count} |")
    if manifest is not None:
        total = sum(run.wall_s or 0.0 for run in manifest.scripts)
        lines += ["", f"Total wall time of the scripts: {total / 60:.1f} min."]
    if manifest is None:  # no record of a run: show whatever rows there are, as such
        for stem in sorted(set(found) | set(broken)):
            status = broken.get(stem, "ok (not from a --run: no wall time)")
            lines.append(f"| `{stem}` | {_cell(status)} |  |  | {len(found.get(stem, []))} |")
        listed = set(found)
    else:
        ignored = sorted(set(found) - {Path(run.script).stem for run in manifest.scripts})
        if ignored:  # rows of scripts this run did not run: from another run, left out
            lines += ["", "Left out (not part of this run): " + ", ".join(ignored) + "."]

    order = [Path(run.script).stem for run in manifest.scripts] if manifest else sorted(found)
    rows = [r for stem in order if stem in listed and stem not in broken for r in found[stem]]
    groups = _groups(rows)
    sections: dict[str, list[dict[str, Any]]] = {}
    for each in rows:
        sections.setdefault(each["section"], []).append(each)
    tally = {"yes": 0, "no": 0}
    for section, members in sections.items():
        lines += ["", f"## {section}", ""]
        lines.append(
            "| figure | n | unit | kernelflow: median (min to max) | baseline | value | target "
            "| met | notes |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for each in members:
            group = groups.get((each["section"], each["label"], each["unit"]))
            decided = verdict(each, group)
            tally["yes" if decided.met == "yes" else "no"] += 1
            base = ""
            if each.get("baseline"):
                base = f"{each['baseline_name'] or 'baseline'}: {_spread(each['baseline'])}"
            value = "" if decided.value is None else _num(decided.value)
            notes = "; ".join(x for x in (each["notes"], decided.why) if x)
            n = f"{each['n']:,}" if each.get("n") is not None else ""
            lines.append(
                "| "
                + " | ".join(
                    _cell(x)
                    for x in (
                        each["label"],
                        n,
                        each["unit"],
                        _spread(each["kernelflow"]),
                        base,
                        value,
                        _target(each["target"], each["unit"]),
                        decided.met,
                        notes,
                    )
                )
                + " |"
            )
    lines += [
        "",
        '## How "met" is decided',
        "",
        f"{tally['yes']} of {tally['yes'] + tally['no']} rows met. `bench/report.py` decides every",
        '"met"; no script does. "value" is kernelflow / baseline for a ratio target, the median',
        "for an absolute one and the largest median over the smallest for a flatness one.",
        "A row is met only when the spread of its repeats (min to max; 10th to 90th",
        "percentile from 10 repeats on; for a ratio of sides run in turns, the per-pair",
        'ratios) stays within the target; "no (noise)" when the spread straddles the target',
        'or the figure cannot be told from the same process doing no work; "no (invalid)"',
        "for a zero, negative or non-finite figure, or one not above its no-work baseline.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the scripts given with ``--run`` (if any), then write RESULTS.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="+", metavar="SCRIPT", help="run these scripts first")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument(
        "--timeout", type=float, default=SCRIPT_TIMEOUT_S, help="seconds allowed per script"
    )
    opts = parser.parse_args(argv)
    if opts.run:
        run_all([Path(script).resolve() for script in opts.run], opts.quick, OUT, opts.timeout)
    RESULTS.write_text(render())
    print(f"wrote {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
