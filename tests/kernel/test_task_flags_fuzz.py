"""Fuzzing the ``%%task`` flag line (hypothesis): random tokens, known flags with garbage
values, quotes, durations, unicode, nothing at all.

Whatever is typed: the cell runs, or it is refused with our one-line message (a
``UsageError`` followed by the usage line, or a kernelflow error) before its body runs;
never another exception, never a traceback.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

from kernelflow._durations import MAX_SECONDS
from kernelflow.errors import KernelflowError
from kernelflow.kernel.magics import KernelflowMagics, _parse
from kernelflow.tasks import Task

FLAGS = [
    "--retries",
    "--retry-delay",
    "--timeout",
    "--no-cache",
    "--expire",
    "--refresh",
    "--tags",
    "--exclude",
    "--reads",
    "--concurrency",
    "--verbose",
    "-v",
    # not flags of %%task: misspelt, Prefect's names, argparse's own
    "--cache-expiration",
    "--retry",
    "--timeout_seconds",
    "-h",
    "--help",
    "--",
    "-",
    "--=",
]
VALUES = [
    "-1",
    "0",
    "0s",
    "00",
    "1",
    "2.5",
    ".5",
    "30s",
    "5m",
    "1h30m",
    "1.5h",
    "250ms",
    "1e3",
    "nan",
    "inf",
    "-inf",
    "1" * 30,
    "9" * 12,
    "9" * 400,
    "٣",  # an Arabic-Indic three: int() reads it
    "1_000",
    "0x10",
    "soon",
    "'a b'",
    '"a b"',
    "'",
    '"',
    "\\",
    "a,,b",
    ",",
    "名前",
    "x=1",
]
TOKENS = st.one_of(
    st.sampled_from(FLAGS),
    st.sampled_from(VALUES),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
)
LINES = st.one_of(
    st.lists(TOKENS, max_size=6).map(" ".join),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.tuples(st.sampled_from(FLAGS), st.sampled_from(VALUES)).map(" ".join),
)


def one_line(text: str) -> str:
    """The text with line breaks dropped: in a cell they end the ``%%task`` line."""
    return "".join(c for c in text if len(f"a{c}b".splitlines()) == 1)


def refused_in_one_line(error: BaseException) -> None:
    """A refusal: our message, one line (a UsageError adds the usage line after it)."""
    text = str(error)
    lines = text.splitlines()
    if isinstance(error, UsageError):
        assert len(lines) == 2, text
        assert lines[0].startswith("%%task: ") and lines[0] != "%%task: ", text
        assert lines[1].startswith("usage: %%task [--retries N]"), text
    else:
        assert isinstance(error, KernelflowError), repr(error)
        assert len(lines) == 1 and lines[0].strip(), text
        assert error._render_traceback_() == [f"{type(error).__name__}: {text}"]


@settings(max_examples=300, deadline=None)
@given(line=LINES)
def test_the_parser_accepts_or_refuses_with_a_usage_error(line: str) -> None:
    try:
        args = _parse(KernelflowMagics.task, line)
    except UsageError as exc:
        event("refused")
        refused_in_one_line(exc)
        return
    event("accepted")
    # What the parser accepts, the task accepts: no second, later refusal.
    assert isinstance(args.retries, int) and args.retries >= 0
    assert 0 <= args.retry_delay <= MAX_SECONDS and math.isfinite(args.retry_delay)
    for seconds in (args.timeout, args.expire):
        assert seconds is None or 0 < seconds <= MAX_SECONDS
    for names in (args.tags, args.exclude, args.reads):
        assert all(isinstance(n, str) and n.strip() == n and n for n in names)
    Task(
        lambda: None,
        name=args.name or "cell",
        tags=args.tags,
        retries=args.retries,
        retry_delay_seconds=args.retry_delay,
        timeout_seconds=args.timeout,
        cache_expiration=args.expire,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=LINES)
def test_a_cell_with_fuzzed_flags_runs_or_shows_one_line(ip: Any, capsys: Any, line: str) -> None:
    ip.user_ns.pop("kf_fuzz_ran", None)
    capsys.readouterr()
    result = ip.run_cell(f"%%task {one_line(line)}\nkf_fuzz_ran = 1\n", store_history=False)
    out, err = capsys.readouterr()
    shown = out + err
    assert "Traceback" not in shown and "kernelflow/" not in shown, shown
    error = result.error_in_exec
    event("ran" if error is None else type(error).__name__)
    if error is None:
        assert ip.user_ns.get("kf_fuzz_ran") == 1  # ran, or restored from the cache
        return
    refused_in_one_line(error)
    assert "kf_fuzz_ran" not in ip.user_ns, "the body ran although its flags were refused"
    if isinstance(error, UsageError):  # IPython prints it to stderr, nothing else
        assert err == f"UsageError: {error}\n" and out == "", shown
    else:  # our one line, after the run's status line
        assert out.splitlines()[-1] == f"{type(error).__name__}: {error}", shown


def test_known_bad_flags_are_refused_naming_the_flag(ip: Any) -> None:
    cases = {
        "--retries -1": "argument --retries: '-1' is not a whole number >= 0",
        "--timeout 9999999999": "argument --timeout: '9999999999' is not a number of seconds > 0",
        "--expire 9999999999": "argument --expire: '9999999999' is not a duration > 0 (at most",
        "--retry-delay inf": "argument --retry-delay: 'inf' is not a number of seconds > 0",
        "--expire nan": "argument --expire: 'nan' is not a duration",
        "--cache-expiration 5m": "unrecognized arguments: --cache-expiration",
        "--tags ,": "argument --tags: ',' lists no names",
        "'unclosed": "No closing quotation",
    }
    for line, message in cases.items():
        ip.user_ns.pop("kf_fuzz_ran", None)
        try:
            ip.run_cell_magic("task", line, "kf_fuzz_ran = 1\n")
        except UsageError as exc:
            refused_in_one_line(exc)
            assert message in str(exc).splitlines()[0], (line, str(exc))
        else:
            raise AssertionError(f"{line!r} was accepted")
        assert "kf_fuzz_ran" not in ip.user_ns


def test_a_zero_retry_delay_in_any_spelling(ip: Any, store: Any) -> None:
    for i, delay in enumerate(["0", "0.0", "0s", "00", "0m"]):
        ip.run_cell_magic("task", f"zero{i} --retry-delay {delay} --no-cache", "kf_fuzz_ran = 1\n")
    rows = store.sql("SELECT state_name FROM task_runs")
    assert rows["state_name"].tolist() == ["Completed"] * 5
