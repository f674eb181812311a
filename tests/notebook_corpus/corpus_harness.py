"""Running the corpus notebooks plain and as ``%%task`` notebooks, and comparing what they show.

The contract under test: a cache hit leaves the namespace, the displayed output
and every object the cell touched exactly as running the cell would have, or
the cell runs. From outside the kernel the observable part of that is what
every later cell shows, so a notebook is run plain (the reference) and as a
*task version* (``%load_ext kernelflow`` first, every code cell under
``%%task``), and each code cell's outputs are compared, after masking only
what cannot be equal:

* kernelflow's own status lines (``cached · took ...``, a ``CacheWarning``,
  ``kernelflow: could not show figures``), which a plain run never prints;
* memory addresses (``0x7f...``), which differ between any two processes,
  and the file and line a warning names in a cell (``ipykernel_<pid>/<hash>.py:<line>``):
  the file is named after the kernel's pid, and the task version has one more line;
* what the manifest lists for a cell, with its reason (timings, mostly).

Streams are compared as whole texts per stream (``stdout``, ``stderr``),
because how a stream is split into messages, and how stdout and stderr
interleave, depends on flush timing, not on the cell. Rich outputs
(``execute_result``, ``display_data``, errors) are compared in order, every
MIME type except widget views; PNG images byte for byte, falling back to
decoded pixels only to say how they differ (matplotlib's Agg output is
deterministic here, so equal figures give equal bytes; two PNGs whose
decoded pixels are equal count as equal, and otherwise the report says how
many pixels differ).

A cell's hit is read from its ``cached · took`` line, and checked against
the store (``task_runs.state_name`` of the kernel session's flow run).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import difflib
import io
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NOTEBOOKS = HERE / "notebooks"
MANIFEST = HERE / "MANIFEST.json"

#: kernelflow's own lines, by stream: never printed by a plain run, so masked.
KERNELFLOW_LINES = {
    "stdout": [re.compile(r"^cached · took [^\n]* · ran [^\n]*\n", re.M)],
    "stderr": [
        # warnings.showwarning's format: "file:line: CacheWarning: message\n  source line\n"
        re.compile(r"^[^\n]*: CacheWarning: [^\n]*\n(?:  [^\n]*\n)?", re.M),
        re.compile(r"^kernelflow: could not show figures: [^\n]*\n", re.M),
    ],
}
_CACHED_LINE = KERNELFLOW_LINES["stdout"][0]
# A memory address: "0x7f3a..." (reprs), or "...x7f3a..." (scikit-learn's HTML
# repr shortens long reprs to their ends).
_ADDRESS = re.compile(r"(?:\b0|\.\.\.)x[0-9a-fA-F]{6,}")
# Where a warning says it was raised: ipykernel names each cell's code after the
# kernel's pid and a hash of the code (".../ipykernel_123/4567.py:3"), so no two
# kernels agree, and the task version's line numbers count its `%%task` line.
_CELL_FILE = re.compile(r"(?:[^\s\"']*/)?ipykernel_\d+/-?\d+\.py(?::\d+)?")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LOAD_EXT = "%load_ext kernelflow"
#: Appended to every task version, after the cells that are compared: kernelflow's
#: own explanation (``%kf why``) of each cell that did not use the cache.
WHY_CELL = """\
# kernelflow corpus diagnostics, not part of the notebook: `%kf why` for each miss
import os as _kfc_os

import kernelflow as _kfc

_kfc_runs = _kfc.sql(
    "SELECT id, task_name, state_name FROM task_runs WHERE pid = ? ORDER BY created",
    [_kfc_os.getpid()],
)
# Cells that share a task name have distinct names in the session's lineage
# ("name-2"...), which is what `%kf why` looks up: use those when they can be found.
try:
    _kfc_names = {
        record.task_run_id: record.name
        for record in get_ipython()
        .magics_manager.registry["KernelflowMagics"]
        .runner.lineage.cells.values()
    }
except Exception:
    _kfc_names = {}
for _kfc_id, _kfc_name, _kfc_state in _kfc_runs.itertuples(index=False):
    _kfc_name = _kfc_names.get(_kfc_id, _kfc_name)
    print(f"@@why {_kfc_name} {_kfc_state}")
    if _kfc_state != "Cached":
        try:
            get_ipython().run_line_magic("kf", f"why {_kfc_name}")
        except Exception as _kfc_error:  # reported, not raised: the runs are what is tested
            print(f"%kf why failed: {_kfc_error!r}")
"""

#: Environment of every kernel (on top of the test's own, which holds the store).
KERNEL_ENV = {
    "KERNELFLOW_WIDGETS": "off",
    # ipykernel's default, made explicit: a CI runner exporting MPLBACKEND=Agg
    # would otherwise silence every figure.
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    # One BLAS/OpenMP thread: threaded reductions may sum in another order
    # from run to run (last-digit differences), and the machine has 2 cores.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


def load_manifest() -> dict[str, Any]:
    """The parsed ``MANIFEST.json``."""
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def read_notebook(name: str) -> Any:
    """The corpus notebook ``name`` (nbformat v4)."""
    import nbformat

    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


# --- the notebooks that are run ----------------------------------------------------------


def is_task_cell(source: str) -> bool:
    """Whether the task version puts the cell under ``%%task`` (not empty, no cell magic)."""
    return bool(source.strip()) and not source.lstrip().startswith("%%")


def task_version(nb: Any) -> Any:
    """``nb`` with ``%load_ext kernelflow`` first and every code cell under ``%%task``.

    A last cell (:data:`WHY_CELL`) prints kernelflow's reason for each miss.
    Cell ids are kept, so kernelflow sees the same cell as the same cell in
    every run, as it would in a notebook that is reopened.
    """
    import nbformat

    task = copy.deepcopy(nb)
    for cell in task.cells:
        if cell.cell_type == "code" and is_task_cell(cell.source):
            cell.source = "%%task\n" + cell.source
    task.cells.insert(0, nbformat.v4.new_code_cell(LOAD_EXT, id="kernelflow-load-ext"))
    task.cells.append(nbformat.v4.new_code_cell(WHY_CELL, id="kernelflow-why"))
    return task


def why_texts(execution: Execution) -> list[tuple[str, str, str]]:
    """``(task name, state, %kf why text)`` per task run of the session, in cell order."""
    cell = execution.nb.cells[-1]
    text = "".join(
        o.get("text", "") for o in cell.get("outputs", []) if o["output_type"] == "stream"
    )
    errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
    if errors:
        return [
            ("?", "?", f"the diagnostics cell raised {errors[0]['ename']}: {errors[0]['evalue']}")
        ]
    found = []
    for chunk in text.split("@@why ")[1:]:
        head, _, body = chunk.partition("\n")
        name, _, state = head.rpartition(" ")
        found.append((name, state, body.strip()))
    return found


def with_parameter(nb: Any, parameter: dict[str, Any]) -> Any:
    """``nb`` with the manifest's parameter change applied (``old`` must occur once)."""
    changed = copy.deepcopy(nb)
    cell = changed.cells[parameter["cell"]]
    count = cell.source.count(parameter["old"])
    if cell.cell_type != "code" or count != 1:
        raise ValueError(
            f"parameter {parameter['old']!r} occurs {count} times in cell "
            f"{parameter['cell']} ({cell.cell_type}); fix MANIFEST.json"
        )
    cell.source = cell.source.replace(parameter["old"], parameter["new"])
    return changed


# --- running -----------------------------------------------------------------------------


@dataclass
class Execution:
    """One notebook run in one fresh kernel."""

    label: str
    nb: Any
    seconds: float
    leftovers: list[int] = field(default_factory=list)


async def execute(
    nb: Any,
    label: str,
    *,
    kernel_name: str,
    cwd: Path,
    name: str,
    cell_timeout: float,
    run_timeout: float,
) -> Execution:
    """Run ``nb`` in a fresh kernel with cwd ``cwd``; the kernel is shut down after.

    The notebook is saved as ``cwd/name.ipynb`` first and the kernel told so
    (``JPY_SESSION_NAME``), as Jupyter does: kernelflow names the session's
    flow run after it. Errors are kept as outputs (``allow_errors``), so every
    cell of every run can be compared. ``leftovers`` lists the kernel and its
    descendants still alive a few seconds after shutdown (should be empty).
    """
    import nbformat
    import psutil
    from nbclient import NotebookClient

    nb = copy.deepcopy(nb)
    path = cwd / f"{name}.ipynb"
    nbformat.write(nb, path)
    processes: list[Any] = []
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=cell_timeout,
        startup_timeout=120,
        allow_errors=True,
        shutdown_kernel="graceful",  # kernelflow ends the session run at exit
        resources={"metadata": {"path": str(cwd)}},
    )

    current: dict[str, str] = {}

    def started(**_: Any) -> None:
        processes.append(psutil.Process(client.km.provisioner.pid))
        # Send each cell's id with its execute_request (metadata "cellId"), as
        # JupyterLab and Notebook do and nbclient does not: kernelflow names and
        # tells cells apart by it.
        session = client.kc.session
        make = session.msg

        def msg(msg_type: str, *args: Any, **kwargs: Any) -> Any:
            message = make(msg_type, *args, **kwargs)
            if msg_type == "execute_request" and current.get("id"):
                message["metadata"]["cellId"] = current["id"]
            return message

        session.msg = msg

    def executing(cell: Any, **_: Any) -> None:
        current["id"] = cell.get("id")

    def finished(**_: Any) -> None:
        # Children the kernel started (joblib workers...) must die with it.
        for process in list(processes):
            try:
                processes.extend(process.children(recursive=True))
            except psutil.NoSuchProcess:
                pass

    client.on_notebook_start = started
    client.on_cell_execute = executing
    client.on_notebook_complete = finished
    kernel_env = {**os.environ, **KERNEL_ENV, "JPY_SESSION_NAME": str(path)}
    begin = time.monotonic()
    await asyncio.wait_for(client.async_execute(env=kernel_env, cwd=str(cwd)), run_timeout)
    seconds = time.monotonic() - begin
    _, alive = psutil.wait_procs(processes, timeout=10)
    leftovers = [p.pid for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    return Execution(label, nb, seconds, leftovers)


async def run_entry(
    entry: dict[str, Any], kernel_name: str, workdir: Path, *, cell_timeout: float = 120
) -> dict[str, Execution]:
    """All the runs of one corpus notebook, by label.

    Two chains run side by side (the machine has two cores): the plain
    notebook then its changed version, in ``workdir/plain``; and the task
    version three times then its changed version, in ``workdir/task``, one
    after the other against the same store, each in a fresh kernel.

    Every run starts from the same directory: emptied, then holding only the
    notebook. So the notebook path (and kernelflow's session name) stays the
    same from run to run, as for a notebook reopened by its user, while files
    written by an earlier run cannot stand in for a cell that did not run: a
    cell's files are part of what it touched.
    """
    name = entry["name"]
    plain = read_notebook(name)
    changed = with_parameter(plain, entry["parameter"])
    dirs = {kind: workdir / kind for kind in ("plain", "task")}
    run_timeout = cell_timeout * 4

    def fresh(directory: Path) -> Path:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return directory

    def run(nb: Any, label: str, kind: str) -> Any:
        fresh(dirs[kind])
        return execute(
            nb,
            label,
            kernel_name=kernel_name,
            cwd=dirs[kind],
            name=name,
            cell_timeout=cell_timeout,
            run_timeout=run_timeout,
        )

    async def plain_chain() -> list[Execution]:
        return [await run(plain, "plain", "plain"), await run(changed, "plain changed", "plain")]

    async def task_chain() -> list[Execution]:
        runs = []
        for number in (1, 2, 3):
            runs.append(await run(task_version(plain), f"task {number}", "task"))
        runs.append(await run(task_version(changed), "task changed", "task"))
        return runs

    chains = [asyncio.ensure_future(plain_chain()), asyncio.ensure_future(task_chain())]
    try:
        results = await asyncio.gather(*chains)
    finally:
        for chain in chains:  # one chain failed: stop the other, its kernel shut down too
            chain.cancel()
        await asyncio.gather(*chains, return_exceptions=True)
    return {execution.label: execution for chain in results for execution in chain}


# --- comparing ---------------------------------------------------------------------------


@dataclass
class CellView:
    """What one code cell showed, normalised for comparison."""

    index: int
    source: str
    stdout: str
    stderr: str
    rich: list[tuple]
    hit: bool
    kernelflow_lines: list[str]


def _mask(text: str, masks: list[re.Pattern[str]]) -> str:
    text = _ADDRESS.sub("<address>", text)
    text = _CELL_FILE.sub("<cell file>", text)
    for pattern in masks:
        text = pattern.sub("<masked>", text)
    return text


def view_of(cell: Any, index: int, source: str, masks: list[re.Pattern[str]]) -> CellView:
    """Normalise an executed cell's outputs (``source``: the plain cell's code)."""
    streams = {"stdout": "", "stderr": ""}
    rich: list[tuple] = []
    for output in cell.get("outputs", []):
        kind = output["output_type"]
        if kind == "stream":
            streams[output["name"]] += output["text"]
        elif kind in ("display_data", "execute_result"):
            data = {
                mime: value if mime.startswith("image/") else _mask(_text(value), masks)
                for mime, value in output["data"].items()
                if mime != _WIDGET_VIEW
            }
            rich.append((kind, data))
        elif kind == "error":
            rich.append(("error", output["ename"], _mask(_ANSI.sub("", output["evalue"]), masks)))
    own: list[str] = []
    for stream, patterns in KERNELFLOW_LINES.items():
        for pattern in patterns:
            own += pattern.findall(streams[stream])
            streams[stream] = pattern.sub("", streams[stream])
    return CellView(
        index=index,
        source=source,
        stdout=_mask(streams["stdout"], masks),
        stderr=_mask(streams["stderr"], masks),
        rich=rich,
        hit=any(_CACHED_LINE.match(line) for line in own),
        kernelflow_lines=[line.rstrip("\n") for line in own],
    )


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


#: How a difference that is only the order of a cell's rich outputs starts.
ORDER_ONLY = "same outputs in another order"


def compare(expected: CellView, got: CellView) -> list[str]:
    """How ``got`` differs from ``expected`` (empty: the same), one entry per difference."""
    differences = []
    for stream in ("stdout", "stderr"):
        want, have = getattr(expected, stream), getattr(got, stream)
        if want != have:
            differences.append(f"{stream} differs:\n{_diff(want, have)}")
    kinds = [item[0] for item in expected.rich]
    got_kinds = [item[0] for item in got.rich]
    rich = got.rich
    if kinds != got_kinds:
        if sorted(kinds) != sorted(got_kinds):
            differences.append(f"rich outputs differ: plain has {kinds}, task run has {got_kinds}")
            for item in got.rich:
                if item[0] == "error":
                    differences.append(f"task run raised {item[1]}: {item[2][:300]}")
            return differences
        # The same kinds of output, shown in another order (a figure above the
        # Out[] instead of below it): said once, then each output is compared
        # with its counterpart.
        differences.append(f"{ORDER_ONLY}: plain has {kinds}, task run has {got_kinds}")
        pending = list(got.rich)
        rich = []
        for kind in kinds:
            match = next(item for item in pending if item[0] == kind)
            pending.remove(match)
            rich.append(match)
    for position, (want, have) in enumerate(zip(expected.rich, rich, strict=True)):
        if want[0] == "error":
            if want[1:] != have[1:]:
                differences.append(
                    f"error differs: {want[1]}: {want[2]!r} vs {have[1]}: {have[2]!r}"
                )
            continue
        want_data, have_data = want[1], have[1]
        if sorted(want_data) != sorted(have_data):
            differences.append(
                f"{want[0]} #{position}: MIME types {sorted(want_data)} vs {sorted(have_data)}"
            )
            continue
        for mime in sorted(want_data):
            if want_data[mime] == have_data[mime]:
                continue
            if mime == "image/png":
                how = _png_difference(want_data[mime], have_data[mime])
                if how:
                    differences.append(f"{want[0]} #{position} image/png: {how}")
            else:
                differences.append(
                    f"{want[0]} #{position} {mime} differs:\n"
                    f"{_diff(_text(want_data[mime]), _text(have_data[mime]))}"
                )
    return differences


def _diff(want: str, have: str, limit: int = 12, width: int = 150) -> str:
    """A short unified diff (plain run ``-``, task run ``+``), long lines cut around the change."""
    lines = list(
        difflib.unified_diff(
            want.splitlines(), have.splitlines(), "plain", "task", n=0, lineterm=""
        )
    )[2:]
    shown = []
    partner = ""
    for line in lines:
        if line.startswith("-"):
            partner = line
        if len(line) > width:
            # Cut around the first character where the line differs from its pair.
            other = partner if line.startswith("+") else line
            start = next(
                (i for i, (a, b) in enumerate(zip(line, other, strict=False)) if a != b), 1
            )
            start = max(1, start - width // 3)
            line = f"{line[0]}…{line[start : start + width]}…"
        shown.append(line)
    if len(shown) > limit:
        shown = [*shown[:limit], f"... ({len(shown) - limit} more diff lines)"]
    return "\n".join("      " + line for line in shown)


def _png_difference(want: str, have: str) -> str:
    """How two base64 PNGs differ (size, or how many pixels); empty if the pixels are equal."""
    import numpy as np
    from PIL import Image

    images = [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(_text(b64)))).convert("RGBA"))
        for b64 in (want, have)
    ]
    if images[0].shape != images[1].shape:
        sizes = [f"{image.shape[1]}x{image.shape[0]}" for image in images]
        return f"size {sizes[0]} vs {sizes[1]}"
    changed = int(np.any(images[0] != images[1], axis=-1).sum())
    if changed == 0:
        return ""  # the same picture, encoded differently: not a difference anyone sees
    total = images[0].shape[0] * images[0].shape[1]
    return f"{changed} of {total} pixels differ"


def views(
    execution: Execution, plain: Any, masks_by_cell: dict[int, list], offset: int
) -> dict[int, CellView]:
    """Views of every code cell of ``execution``, keyed by the plain notebook's cell index.

    ``offset`` is 1 for a task version (its first cell is ``%load_ext``).
    """
    found = {}
    for index, cell in enumerate(plain.cells):
        if cell.cell_type != "code":
            continue
        ran = execution.nb.cells[index + offset]
        found[index] = view_of(ran, index, cell.source, masks_by_cell.get(index, []))
    return found


# --- the verdict -------------------------------------------------------------------------

#: The task runs, each with the plain run whose outputs it must show.
REFERENCES = {
    "task 1": "plain",
    "task 2": "plain",
    "task 3": "plain",
    "task changed": "plain changed",
}
#: Runs 2 and 3 of an unchanged notebook must be served (almost) wholly from the cache.
MIN_HIT_RATE = 0.95


@dataclass
class Problem:
    """A cell whose task run showed something else than the plain run."""

    run: str
    index: int
    source: str
    hit: bool
    differences: list[str]

    @property
    def kind(self) -> str:
        """What went wrong: ``false hit``, ``differs`` or ``order only``.

        A false hit was served from the cache and shows something else; a cell
        that ran under ``%%task`` and shows something else ``differs``; ``order
        only`` is the same outputs in another order.
        """
        if all(difference.startswith(ORDER_ONLY) for difference in self.differences):
            return "order only"
        return "false hit" if self.hit else "differs"

    def text(self) -> str:
        """The problem as the report shows it."""
        head = self.source.strip().splitlines()[0] if self.source.strip() else ""
        lines = [
            f"[{self.run}] cell {self.index} ({'hit' if self.hit else 'ran'}, {self.kind}): "
            f"{head[:70]!r}"
        ]
        lines += ["    " + difference for difference in self.differences]
        return "\n".join(lines)


@dataclass
class Report:
    """Everything one corpus notebook's runs showed."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # not about one cell
    notes: list[str] = field(default_factory=list)  # facts, not failures
    hits: dict[str, list[int]] = field(default_factory=dict)  # run -> cells that hit
    misses: dict[str, dict[int, str]] = field(default_factory=dict)  # run -> cell -> why
    eligible: list[int] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No problem and no failure."""
        return not self.problems and not self.failures

    def text(self) -> str:
        """A readable report: hits per run, failures, then each differing cell."""
        lines = [
            f"{self.name}: {len(self.problems)} differing cell(s), {len(self.failures)} failure(s)"
        ]
        for run, hit in self.hits.items():
            lines.append(
                f"  {run}: {len(hit)}/{len(self.eligible)} eligible cells hit {hit} "
                f"({self.seconds.get(run, 0):.1f} s)"
            )
        for run, missed in self.misses.items():
            lines += [f"  {run}: cell {index} missed: {why}" for index, why in missed.items()]
        lines += [f"  FAIL {failure}" for failure in self.failures]
        lines += [f"  note {note}" for note in self.notes]
        lines += [problem.text() for problem in self.problems]
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        """The report as plain data (written beside the test run on request)."""
        return {
            "name": self.name,
            "problems": [{**problem.__dict__, "kind": problem.kind} for problem in self.problems],
            "failures": self.failures,
            "notes": self.notes,
            "hits": self.hits,
            "misses": self.misses,
            "eligible": self.eligible,
            "seconds": self.seconds,
        }


def analyse(
    entry: dict[str, Any], executions: dict[str, Execution], sessions: list[list[dict]]
) -> Report:
    """Compare every task run with its plain run; count hits; check the store agrees.

    ``sessions`` holds, per kernel session recorded in the store (oldest first),
    its task runs in the order they were created (``task_name``, ``state_name``,
    ``cache_key``, ``inputs``): one per ``%%task`` cell, in cell order.
    """
    report = Report(entry["name"])
    plain = read_notebook(entry["name"])
    masks: dict[int, list[re.Pattern[str]]] = {}
    for mask in entry.get("masks", []):
        masks.setdefault(mask["cell"], []).append(re.compile(mask["pattern"], re.M))
    # Cells listed as nondeterministic are left out of the hit rate; their outputs
    # are still compared, unless the entry says the plain run's own output is
    # random ("random_output": two plain runs would not agree either).
    unstable = {item["cell"] for item in entry.get("nondeterministic", [])}
    random_output = {
        item["cell"] for item in entry.get("nondeterministic", []) if item.get("random_output")
    }
    report.eligible = [
        index
        for index, cell in enumerate(plain.cells)
        if cell.cell_type == "code" and is_task_cell(cell.source) and index not in unstable
    ]
    report.seconds = {label: execution.seconds for label, execution in executions.items()}
    reference = {
        label: views(executions[label], plain, masks, 0) for label in ("plain", "plain changed")
    }
    _check_corpus(entry, reference, report, random_output)
    task_cells = [
        index
        for index, cell in enumerate(plain.cells)
        if cell.cell_type == "code" and is_task_cell(cell.source)
    ]
    previous: dict[int, CellView] = {}
    for number, (label, against) in enumerate(REFERENCES.items()):
        execution = executions[label]
        got = views(execution, plain, masks, 1)
        for index, view in got.items():
            warnings = [line for line in view.kernelflow_lines if not line.startswith("cached ·")]
            if warnings:
                report.notes.append(f"{label}: cell {index} kernelflow said: {warnings}")
        load_ext = execution.nb.cells[0].get("outputs", [])
        if load_ext:
            report.failures.append(f"{label}: `{LOAD_EXT}` printed {load_ext}")
        for index, view in got.items():
            if index in random_output:
                continue
            differences = compare(reference[against][index], view)
            if differences:
                report.problems.append(Problem(label, index, view.source, view.hit, differences))
        listed_hits = sorted(index for index in unstable if got[index].hit)
        if listed_hits:
            report.notes.append(
                f"{label}: cells {listed_hits} are listed as nondeterministic, yet hit"
            )
        report.hits[label] = [index for index in report.eligible if got[index].hit]
        shown = sum(view.hit for view in got.values())
        runs = sessions[number] if number < len(sessions) else []
        cached = sum(row["state_name"] == "Cached" for row in runs)
        if cached != shown:
            report.failures.append(
                f"{label}: the store has {cached} Cached task runs "
                f"({len(runs)} task runs), the cells show {shown} `cached ·` lines"
            )
        whys = why_texts(execution)
        if len(whys) != len(task_cells):
            report.notes.append(f"{label}: %kf why diagnostics: {whys[:3]}")
        if number > 0 and label != "task changed":
            before = sessions[number - 1] if number - 1 < len(sessions) else []
            for index in report.eligible:
                if not got[index].hit:
                    reason = _miss_reason(index, task_cells, previous.get(index), before, runs)
                    if len(whys) == len(task_cells):
                        name, _, why = whys[task_cells.index(index)]
                        shared = [c for c, w in zip(task_cells, whys, strict=True) if w[0] == name]
                        if len(shared) > 1:  # `%kf why NAME` then tells about the last of them
                            why = f"(cells {shared} are all named {name!r}) {why}"
                        reason += f"\n      %kf why {name}: " + why.replace("\n", "\n      ")
                    report.misses.setdefault(label, {})[index] = reason
        previous = got
        if label in ("task 2", "task 3") and report.eligible:
            rate = len(report.hits[label]) / len(report.eligible)
            if rate < MIN_HIT_RATE:
                missed = sorted(set(report.eligible) - set(report.hits[label]))
                report.failures.append(
                    f"{label}: {rate:.0%} of eligible cells hit (< {MIN_HIT_RATE:.0%}); "
                    f"missed cells {missed}"
                )
        if execution.leftovers:
            report.failures.append(f"{label}: processes left running: {execution.leftovers}")
    if len(sessions) != len(REFERENCES):
        report.failures.append(
            f"the store has {len(sessions)} kernel sessions with task runs, "
            f"expected {len(REFERENCES)}"
        )
    for label in ("plain", "plain changed"):
        if executions[label].leftovers:
            leftovers = executions[label].leftovers
            report.failures.append(f"{label}: processes left running: {leftovers}")
    return report


def _miss_reason(
    index: int,
    task_cells: list[int],
    before_view: CellView | None,
    before: list[dict],
    now: list[dict],
) -> str:
    """Why cell ``index`` missed: what the previous run said, or which key part changed."""
    if before_view is not None:
        warnings = [line for line in before_view.kernelflow_lines if "CacheWarning" in line]
        if warnings:
            return f"the previous run did not cache it: {warnings[0][:300]}"
    if len(before) != len(task_cells) or len(now) != len(task_cells):
        return "unknown (the store's task runs do not line up with the cells)"
    old, new = before[task_cells.index(index)], now[task_cells.index(index)]
    if old["state_name"] not in ("Completed", "Cached"):
        return f"the previous run ended {old['state_name']}"
    if old["cache_key"] == new["cache_key"]:
        return "same cache key as the previous run, yet not served"
    old_inputs, new_inputs = json.loads(old["inputs"] or "{}"), json.loads(new["inputs"] or "{}")
    changed = sorted(
        name
        for name in set(old_inputs) | set(new_inputs)
        if (old_inputs.get(name) or {}).get("hash") != (new_inputs.get(name) or {}).get("hash")
    )
    if changed:
        return "input hash changed since the previous run: " + ", ".join(changed)
    return "cache key changed, no input hash did (code, helper or library part)"


def _check_corpus(
    entry: dict[str, Any],
    reference: dict[str, dict[int, CellView]],
    report: Report,
    random_output: set[int],
) -> None:
    """Fail on a corpus mistake: a plain run that raised, a parameter change that shows nothing.

    A cell whose output is random anyway (``random_output``) does not count as showing
    the change.
    """
    for label, found in reference.items():
        for index, view in found.items():
            if any(item[0] == "error" for item in view.rich):
                report.failures.append(
                    f"corpus: the {label} run raised in cell {index}: {view.rich[-1][1:]}"
                )
    changed = [
        index
        for index in reference["plain"]
        if index not in random_output
        and compare(reference["plain"][index], reference["plain changed"][index])
    ]
    if not changed:
        report.failures.append(
            f"corpus: changing {entry['parameter']['old']!r} to {entry['parameter']['new']!r} "
            "changes no output, so it cannot catch a false hit; pick another parameter"
        )
    else:
        report.notes.append(f"the parameter change shows in cells {changed}")
