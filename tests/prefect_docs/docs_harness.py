"""Run Prefect's documentation examples and reduce what they show to comparable facts.

Used by ``golden.py`` (records each example on real Prefect) and by
``test_prefect_docs.py`` (runs it on kernelflow and compares). Both sides go
through the same functions, so whatever is masked is masked alike:

- :func:`translate` turns a program written against ``prefect`` into one for
  kernelflow by rewriting its import statements, and nothing else.
- :func:`run_program` runs a program in a fresh interpreter through
  ``_run_example.py`` and returns a :class:`Run`: exit code, the exception
  that escaped (type, module, message), stdout and stderr.
- :func:`normalise` reduces a run to three :data:`ASPECTS`: ``stdout`` (lines,
  masked), ``outcome`` (exit code and exception type) and ``logs`` (one
  ``(level, kind, message)`` triple per console log line, masked).

Masked everywhere: run names that the library made up (Prefect's and
kernelflow's adjective-animal flow run names become ``<flow-run>``, not
numbered: two runs can draw the same name; a task run name's generated
suffix becomes ``<n>``: ``add-9eb`` and ``add-0`` are both ``add-<n>``), UUIDs,
dates and times, memory addresses and absolute paths. A run name that a
program chose (``flow_run_name=`` / ``task_run_name=``, found as a string
literal of the program, templates allowed) is kept.

A log line is ``HH:MM:SS.mmm | LEVEL | who - message`` on stderr (Prefect's
console format, which kernelflow copies). ``who`` is ``Flow run 'name'``
(kind ``flow``), ``Task run 'name'`` (kind ``task``) or a logger name, kept
without its ``prefect.``/``kernelflow.`` prefix (``prefect.engine`` and
``kernelflow.engine`` are both ``engine``). Only a message's first line is
kept: tracebacks under an error line are the libraries' own frames. Lines of
the ``prefect`` logger itself (announcing Prefect's temporary API server), of
that server's services (``prefect.server…``) and of Prefect's client-side
``EventsWorker`` are dropped: they report on machinery kernelflow does not have.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXAMPLES = HERE / "examples"
GOLDEN = HERE / "golden"
RUNNER = HERE / "_run_example.py"

#: What is compared, each a test of its own.
ASPECTS = ("stdout", "outcome", "logs")
#: The Prefect version the golden files are recorded with.
PREFECT_VERSION = "3.9.1"
#: Loggers whose lines are not compared (see the module docstring): Prefect's own
#: announcements of its temporary API server, that server's services (``prefect.server…``)
#: and the client's event worker draining at exit. kernelflow has no server.
DROPPED_LOGGERS = re.compile(r"^(prefect|prefect\.server(\..*)?|EventsWorker)$")
#: A bound on one program run, so a hung program cannot hang the test.
RUN_TIMEOUT_S = 300


def example_names() -> list[str]:
    """Every example program's name (``NN_short_name``), in order."""
    return sorted(p.stem for p in EXAMPLES.glob("[0-9][0-9]_*.py"))


def example_path(name: str) -> Path:
    return EXAMPLES / f"{name}.py"


# --- translation -------------------------------------------------------------------------

_FROM = re.compile(r"\bfrom(\s+)prefect\b")
_IMPORT_AS = re.compile(r"\bimport(\s+)prefect(\.[\w.]+\s+as\b)")
_IMPORT_BARE = re.compile(r"\bimport(\s+)prefect(\s*(?:#.*)?)$")


def translate(source: str) -> str:
    """``source`` with ``prefect`` replaced by ``kernelflow`` in its import statements only.

    ``from prefect… import x`` becomes ``from kernelflow… import x``; ``import
    prefect.a as b`` becomes ``import kernelflow.a as b``; ``import prefect``
    becomes ``import kernelflow as prefect``. Strings, comments and every other
    line are left as they are, so line numbers do not change.
    """
    lines = source.splitlines(keepends=True)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "prefect":
            index = node.lineno - 1
            lines[index] = _FROM.sub(r"from\1kernelflow", lines[index], count=1)
        elif isinstance(node, ast.Import) and any(
            alias.name.split(".")[0] == "prefect" for alias in node.names
        ):
            if node.end_lineno != node.lineno or len(node.names) != 1:
                raise ValueError(f"line {node.lineno}: write one `import prefect…` per line")
            alias = node.names[0]
            index = node.lineno - 1
            if alias.name == "prefect" and alias.asname is None:
                lines[index] = _IMPORT_BARE.sub(r"import\1kernelflow as prefect\2", lines[index])
            elif alias.asname is not None:
                lines[index] = _IMPORT_AS.sub(r"import\1kernelflow\2", lines[index])
            else:
                raise ValueError(f"line {node.lineno}: write `import {alias.name} as name`")
    return "".join(lines)


# --- running -----------------------------------------------------------------------------


@dataclass
class Run:
    """What one run of a program showed."""

    exit_code: int
    exception: dict | None
    stdout: str
    stderr: str
    seconds: float

    def as_json(self) -> dict:
        return asdict(self)


def base_environment() -> dict[str, str]:
    """This process's environment less every Prefect and kernelflow setting."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "KERNELFLOW_"))}
    env.update(PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1")
    return env


def prefect_environment(home: Path) -> dict[str, str]:
    """Prefect with a home of its own, its temporary local server, and no telemetry."""
    env = base_environment()
    env.update(
        PREFECT_HOME=str(home),
        DO_NOT_TRACK="1",
        PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY="false",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
    )
    return env


def kernelflow_environment(home: Path) -> dict[str, str]:
    """This checkout importable, a store of its own, no detached compaction after exit."""
    env = base_environment()
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(KERNELFLOW_HOME=str(home), KERNELFLOW_COMPACT_AT_EXIT="off")
    return env


def run_program(
    python: str | Path,
    program: Path,
    env: dict[str, str],
    cwd: Path,
    *,
    timeout: float = RUN_TIMEOUT_S,
) -> Run:
    """Run ``program`` with ``python`` in ``cwd`` (see ``_run_example.py``).

    ``<cwd>`` and ``<home>`` replace the working directory and the library's
    home (``PREFECT_HOME`` / ``KERNELFLOW_HOME``) in what it printed.
    """
    report = cwd / ".example-report.json"
    report.unlink(missing_ok=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [str(python), str(RUNNER), str(program), str(report)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
    seconds = time.perf_counter() - started
    exception = json.loads(report.read_text())["exception"] if report.exists() else None
    report.unlink(missing_ok=True)
    home = env.get("PREFECT_HOME") or env.get("KERNELFLOW_HOME")

    def local(text: str) -> str:
        for path, name in (
            (home, "<home>"),
            (str(program.parent), "<examples>"),
            (str(cwd), "<cwd>"),
        ):
            if path:
                text = text.replace(path, name)
        return text

    if exception is not None:
        exception["message"] = local(exception["message"])
    return Run(proc.returncode, exception, local(proc.stdout), local(proc.stderr), seconds)


# --- normalisation -----------------------------------------------------------------------

LOG_LINE = re.compile(
    r"^(?P<time>\d{2}:\d{2}:\d{2}\.\d{3}) \| (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) *"
    r"\| (?P<who>.+?) - (?P<message>.*)$"
)
_WHO_RUN = re.compile(r"^(?P<kind>Flow|Task) run '(?P<name>.*)'$")
_NAMED_RUN = re.compile(r"\b(?P<kind>[Ff]low|[Tt]ask) run '(?P<name>[^']+)'")

MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
        "<datetime>",
    ),
    (re.compile(r"\b\d{2}:\d{2}:\d{2}(?:\.\d+)?\b"), "<time>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "<addr>"),
    (re.compile(r"(?<![\w.<>/:])/(?:[\w.+\-]+/)+[\w.+\-]*"), "<path>"),
)


def _custom_name_patterns(source: str) -> list[re.Pattern[str]]:
    """Patterns of the run names a program chose: its string literals, ``{…}`` as wildcards."""
    patterns = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = re.split(r"\{[^{}]*\}", node.value)  # a str.format template
        elif isinstance(node, ast.JoinedStr):  # an f-string
            parts, fixed = [], ""
            for value in node.values:
                if isinstance(value, ast.Constant):
                    fixed += str(value.value)
                else:
                    parts.append(fixed)
                    fixed = ""
            parts.append(fixed)
        else:
            continue
        if len("".join(parts).strip("-_ ")) < 3 or any("\n" in p for p in parts):
            continue
        patterns.append(re.compile(".+?".join(re.escape(p) for p in parts) + r"\Z"))
    return patterns


@dataclass
class Names:
    """How run names are masked in one run."""

    replacements: dict[str, str]

    @classmethod
    def of(cls, stderr: str, source: str) -> Names:
        custom = _custom_name_patterns(source)
        flows: dict[str, str] = {}
        tasks: dict[str, str] = {}
        for line in stderr.splitlines():
            for match in _NAMED_RUN.finditer(line):
                name = match["name"]
                if any(p.match(name) for p in custom):
                    continue
                if match["kind"].lower() == "flow":
                    flows[name] = "<flow-run>"
                elif "-" in name:
                    tasks.setdefault(name, name.rsplit("-", 1)[0] + "-<n>")
        return cls({**tasks, **flows})

    def mask(self, text: str) -> str:
        for name in sorted(self.replacements, key=len, reverse=True):
            text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", self.replacements[name], text)
        return text


def mask(text: str, names: Names) -> str:
    """``text`` with generated run names, ids, times, addresses and paths masked."""
    text = names.mask(text)
    for pattern, replacement in MASKS:
        text = pattern.sub(replacement, text)
    return text


def log_kind(who: str) -> str:
    match = _WHO_RUN.match(who)
    if match:
        return match["kind"].lower()
    for prefix in ("prefect.", "kernelflow."):
        if who.startswith(prefix):
            return who[len(prefix) :]
    return who


def log_records(stderr: str, names: Names) -> list[list[str]]:
    """``[level, kind, message]`` for each console log line in ``stderr``, masked."""
    records = []
    for line in stderr.splitlines():
        match = LOG_LINE.match(line)
        if not match or DROPPED_LOGGERS.match(match["who"]):
            continue
        records.append(
            [match["level"], log_kind(match["who"]), mask(match["message"].rstrip(), names)]
        )
    return records


def normalise(run: Run, source: str) -> dict:
    """The comparable facts of ``run`` of the program whose source is ``source``."""
    names = Names.of(run.stderr, source)
    stdout = [mask(line.rstrip(), names) for line in run.stdout.splitlines()]
    while stdout and not stdout[-1]:
        stdout.pop()
    exception = run.exception["type"] if run.exception else None
    return {
        "stdout": stdout,
        "outcome": {"exit_code": run.exit_code, "exception": exception},
        "logs": log_records(run.stderr, names),
    }


def readable(facts: dict) -> dict:
    """``facts`` with each log record as one ``level | kind - message`` string (golden files)."""
    return {**facts, "logs": [_show(record) for record in facts["logs"]]}


# --- comparison --------------------------------------------------------------------------


def _show(item: object) -> str:
    if isinstance(item, list) and len(item) == 3 and all(isinstance(x, str) for x in item):
        return f"{item[0]} | {item[1]} - {item[2]}"
    return json.dumps(item) if not isinstance(item, str) else item


def first_difference(expected: Sequence, actual: Sequence) -> str | None:
    """The first place where ``actual`` differs from ``expected``, in one line; or None."""
    for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return f"#{index + 1}: Prefect {_show(want)!r}, kernelflow {_show(got)!r}"
    if len(expected) > len(actual):
        return f"#{len(actual) + 1}: Prefect {_show(expected[len(actual)])!r}, kernelflow ends"
    if len(actual) > len(expected):
        return f"#{len(expected) + 1}: Prefect ends, kernelflow {_show(actual[len(expected)])!r}"
    return None


def comparable(
    aspect: str,
    facts: dict,
    *,
    ordered: bool = True,
    drop: str | None = None,
    substitute: Sequence[tuple[str, str]] = (),
):
    """One aspect of normalised facts, as compared: a list of lines or records, or a dict.

    ``ordered=False`` sorts log records (their order is not defined when tasks run
    concurrently). ``drop`` is a regular expression: lines or log messages it
    matches are left out (a documented, deliberate difference). ``substitute``
    is ``(pattern, replacement)`` pairs applied to each line or message (values
    an example makes random on purpose).
    """
    value = facts[aspect]
    if aspect == "outcome":
        return [value]
    items = list(value)
    for pattern, replacement in substitute:
        items = [
            re.sub(pattern, replacement, x)
            if isinstance(x, str)
            else [*x[:2], re.sub(pattern, replacement, x[2])]
            for x in items
        ]
    if drop is not None:
        matcher = re.compile(drop)
        items = [x for x in items if not matcher.search(x if isinstance(x, str) else x[2])]
    if aspect == "logs" and not ordered:
        items.sort()
    return items


def report(expected: Iterable, actual: Iterable) -> str:
    """Both sides in full, for a failure message."""
    lines = ["Prefect:"] + [f"  {_show(x)}" for x in expected]
    lines += ["kernelflow:"] + [f"  {_show(x)}" for x in actual]
    return "\n".join(lines)


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.json"


def load_golden(name: str) -> dict:
    return json.loads(golden_path(name).read_text())
