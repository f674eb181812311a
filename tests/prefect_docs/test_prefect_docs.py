"""Prefect's documentation examples, run on kernelflow, show what Prefect 3.9.1 showed.

Each program of ``examples/`` is written against ``prefect``; ``golden/`` holds
what it showed on real Prefect 3.9.1 (``make prefect-golden``). Here each runs
once on kernelflow, with ``prefect`` replaced by ``kernelflow`` in its imports
(``docs_harness.translate``), in a fresh interpreter with a store of its own,
and each of three aspects is its own test (``docs_harness.ASPECTS``):
``stdout``, ``outcome`` (exit code and the type of an escaped exception) and
``logs`` (the console log lines as ``level | kind - message``). Both sides are
normalised by the same code (``docs_harness.normalise``: generated run names,
ids, times, addresses and paths masked).

Registries say what is compared loosely, and where kernelflow is not (yet) Prefect:

- :data:`UNORDERED_LOGS`: examples whose tasks run concurrently; their log
  lines are compared as sorted lists, since no order is defined.
- :data:`RANDOM_VALUES`: values an example makes random on purpose (retry
  jitter), masked on both sides.
- :data:`DELIBERATE`: documented, deliberate differences (README.md, "Where
  kernelflow differs from Prefect"): the aspect, or only its lines matching a
  pattern, is not compared. At most a handful.
- :data:`NOT_YET`: differences because a feature is not built yet. Those tests
  are strict xfails: when the feature lands the test turns red and its entry
  must go. Each reason names the first differing line.
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docs_harness as h
import pytest

EXAMPLES = h.example_names()

#: Concurrent tasks: log lines compared sorted.
UNORDERED_LOGS = frozenset(
    {
        "15_submit_and_wait",
        "16_handling_futures",
        "17_map_and_unmapped",
        "18_nested_map_in_task",
        "19_wait_for_dependencies",
        "20_concurrent_failures",
        "21_async_tasks_gather",
        "22_thread_pool_task_runner",
        "23_futures_resolution",
        "24_result_raise_on_failure",
        "49_final_state_from_returns",
        "50_manual_final_state",
        "51_allow_failure",
        "55_concurrency_missing_limit",
        "56_rate_limit_missing_limit",
        "63_quote_and_opaque",
    }
)


#: Values an example makes random on purpose, masked on both sides: (pattern, replacement).
RANDOM_VALUES: dict[str, list[tuple[str, str]]] = {
    # retry_jitter_factor: each retry waits a random time, and both libraries log it.
    "14_retry_jitter": [(r"\d+(\.\d+)?(?= second)", "<jittered>")],
}


@dataclass(frozen=True)
class Deliberate:
    """A deliberate difference: ``aspect`` is not compared, or only its lines matching ``lines``."""

    aspect: str
    reason: str
    lines: str | None = None


DELIBERATE: dict[str, Deliberate] = {
    "45_test_harness": Deliberate(
        "logs",
        "Prefect's test harness serves Prefect's UI and logs a link to the run in it "
        "('View at http://127.0.0.1:<port>/runs/flow-run/<id>'); kernelflow has no Prefect UI "
        "(its runs are shown in JupyterLab), so there is no such link.",
        lines=r"^View at ",
    ),
    "51_allow_failure": Deliberate(
        "stdout",
        "A task handed allow_failure(<failed future>) as an argument receives None in "
        "kernelflow (as Prefect's own cheat sheet shows), the upstream's exception object in "
        "Prefect 3 (README: 'A deliberate difference from Prefect').",
        lines=r"^report got ",
    ),
    "05_generator_flows": Deliberate(
        "stdout",
        "A flow that returns a generator: both run it to its end inside the flow run; "
        "kernelflow returns its items as a list, as Prefect's docs say ('Supported function "
        "types'), where Prefect 3.9.1 returns None.",
        lines=r"^returned: ",
    ),
    "53_pass_inputs": Deliberate(
        "logs",
        "Invalid flow parameters: kernelflow logs one line on the flow run, naming the flow "
        "and what to do, and ParameterTypeError's message is that one line; Prefect logs "
        "pydantic's error list on 'prefect.flows', then a multi-line message on "
        "'prefect.engine'.",
        lines=r"^(Parameter validation failed for flow |Validation of flow parameters failed"
        r"|Finished in state Failed\(.Validation of flow parameters failed)",
    ),
    "67_pause_timeout": Deliberate(
        "logs",
        "A paused flow run outside a notebook tells how to resume it ('Resume it with: "
        "kernelflow flow-run resume <id>'), one line after Prefect's 'Pausing flow' line: "
        "Prefect points to its UI instead, which kernelflow does not have.",
        lines=r"^Resume it with: ",
    ),
}

#: (example, aspect) -> the missing feature (or the difference) that makes the aspect differ.
NOT_YET: dict[tuple[str, str], str] = {}


def _params() -> list:
    params = []
    for name in EXAMPLES:
        for aspect in h.ASPECTS:
            reason = NOT_YET.get((name, aspect))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(pytest.param(name, aspect, id=f"{name}-{aspect}", marks=marks))
    return params


class KernelflowRuns:
    """Each selected example run once on kernelflow, two at a time, in the background."""

    def __init__(self, root: Path, names: list[str]) -> None:
        self.root = root
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.lock = threading.Lock()
        self.runs: dict[str, Future[h.Run]] = {}
        for name in names:
            self._start(name)

    def _start(self, name: str) -> Future[h.Run]:
        with self.lock:
            if name not in self.runs:
                # Translated here, not in the pool: ``translate`` parses with ``ast``, and on
                # CPython 3.11 two threads parsing at once can corrupt the interpreter's shared
                # AST state ("AST constructor recursion depth mismatch") under pytest's own
                # parsing of tracebacks in the main thread.
                source = h.translate(h.example_path(name).read_text())
                self.runs[name] = self.pool.submit(self._run, name, source)
            return self.runs[name]

    def _run(self, name: str, source: str) -> h.Run:
        """Run the translated example (no ``ast`` here: see :meth:`_start`)."""
        work = self.root / name
        (work / "cwd").mkdir(parents=True)
        program = work / f"{name}.py"
        program.write_text(source)
        return h.run_program(
            sys.executable, program, h.kernelflow_environment(work / "home"), work / "cwd"
        )

    def facts(self, name: str) -> dict:
        run = self._start(name).result()
        return h.normalise(run, h.example_path(name).read_text())

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="session")
def kernelflow_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    selected = sorted(
        {
            item.callspec.params["name"]
            for item in request.session.items
            if getattr(item, "originalname", None) == "test_example_matches_prefect"
        }
    )
    runs = KernelflowRuns(tmp_path_factory.mktemp("prefect-docs"), selected)
    yield runs
    runs.close()


def compared(name: str, aspect: str, expected: dict, actual: dict) -> tuple[list, list]:
    """Both sides of one aspect of one example, as compared (see the registries)."""
    deliberate = DELIBERATE.get(name)
    options = {
        "ordered": name not in UNORDERED_LOGS,
        "drop": deliberate.lines if deliberate and deliberate.aspect == aspect else None,
        "substitute": RANDOM_VALUES.get(name, ()),
    }
    return h.comparable(aspect, expected, **options), h.comparable(aspect, actual, **options)


@pytest.mark.parametrize(("name", "aspect"), _params())
def test_example_matches_prefect(name: str, aspect: str, kernelflow_runs: KernelflowRuns) -> None:
    """One aspect of one example: kernelflow shows what Prefect 3.9.1 showed."""
    deliberate = DELIBERATE.get(name)
    if deliberate is not None and deliberate.aspect == aspect and deliberate.lines is None:
        pytest.skip(f"deliberate difference: {deliberate.reason}")
    golden = h.load_golden(name)
    expected = h.normalise(h.Run(**golden["run"]), h.example_path(name).read_text())
    want, got = compared(name, aspect, expected, kernelflow_runs.facts(name))
    difference = h.first_difference(want, got)
    assert difference is None, f"{name} {aspect} differs at {difference}\n{h.report(want, got)}"


def test_registries_name_real_examples_and_aspects() -> None:
    known = set(EXAMPLES)
    assert set(UNORDERED_LOGS) <= known
    assert set(RANDOM_VALUES) <= known
    assert set(DELIBERATE) <= known
    assert all(d.aspect in h.ASPECTS and d.reason for d in DELIBERATE.values())
    assert len(DELIBERATE) <= 5, "a handful at most: fix kernelflow, or argue it in the README"
    assert {name for name, _ in NOT_YET} <= known
    assert {aspect for _, aspect in NOT_YET} <= set(h.ASPECTS)
    whole = {(name, d.aspect) for name, d in DELIBERATE.items() if d.lines is None}
    assert not whole & set(NOT_YET), "an aspect that is not compared cannot be expected to fail"


def test_every_example_has_a_golden_file() -> None:
    missing = [name for name in EXAMPLES if not h.golden_path(name).exists()]
    assert not missing, f"run `make prefect-golden` for: {', '.join(missing)}"
