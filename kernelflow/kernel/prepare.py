"""Turning a ``%%task`` cell body into code, and running it in the notebook's namespace.

The body goes through IPython's input transformers (``%magic``, ``!cmd``) and
AST transformers, as a normal cell does, and is compiled under a file name
registered with IPython, so tracebacks say ``Cell In[n], line k`` with ``k``
counted from the ``%%task`` line. A final expression is compiled apart: its
value is the cell's ``Out``. Top-level ``await`` is allowed.
"""

from __future__ import annotations

import ast
import inspect
import types
from dataclasses import dataclass
from typing import Any

from kernelflow.errors import CellSyntaxError
from kernelflow.kernel.cells import CellAnalysis, analyze

__all__ = ["PreparedCell", "execute", "note_cell_number", "prepare"]


@dataclass
class PreparedCell:
    """A cell body, transformed, analysed and compiled.

    Attributes
    ----------
    line, body
        The ``%%task`` arguments and the body as typed.
    source
        The body after IPython's input transformers (``%magic``, ``!cmd``).
    analysis
        Its inputs, outputs and code hash.
    filename
        The name tracebacks show (``Cell In[n]``); line numbers match the cell.
    main, last
        Code of all statements but a final expression, and of that expression.
    is_async
        Whether the cell uses top-level ``await``.
    quiet
        Whether a trailing ``;`` hides the final expression.
    """

    line: str
    body: str
    source: str
    analysis: CellAnalysis
    filename: str
    main: types.CodeType
    last: types.CodeType | None
    is_async: bool
    quiet: bool


#: Per shell: the number (``In [n]``) of the cell running now. The shell's
#: ``execution_count`` already names the next cell while one runs.
_cell_numbers: dict[int, int | None] = {}


def note_cell_number(shell: Any, number: int | None) -> None:
    """Remember the number of the cell ``shell`` starts now (its ``pre_run_cell`` event)."""
    _cell_numbers[id(shell)] = number


def prepare(shell: Any, line: str, body: str) -> PreparedCell:
    """Transform, analyse and compile a cell body.

    Raises
    ------
    UsageError
        The body is empty.
    CellSyntaxError
        The body is not valid Python (shown as IPython shows a SyntaxError).
    """
    from IPython.core.error import UsageError

    if not body.strip():
        raise UsageError("%%task needs code: write the cell's code below the %%task line.")
    header = f"%%task {line}".rstrip()
    text = f"{header}\n{body}"
    # Registered every run: IPython maps the file name to this run's number (In[n]).
    number = _cell_numbers.get(id(shell)) or shell.execution_count
    filename = shell.compile.cache(text, number, raw_code=text)
    source = _transformed.get(body)
    if source is None:
        source = _remember(_transformed, body, shell.transform_cell(body))
    try:
        analysis = analyze(source)
    except SyntaxError as exc:
        raise _renderable_syntax_error(shell, exc, filename, body) from None
    flags = shell.compile.flags
    if analysis.has_top_level_await:
        flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    # Compiled code depends only on these, unless AST transformers are installed.
    memo_key = (source, filename, flags) if not shell.ast_transformers else None
    compiled = _compiled.get(memo_key) if memo_key is not None else None
    if compiled is None:
        compiled = _compile(shell, source, filename, flags)
        if memo_key is not None:
            _remember(_compiled, memo_key, compiled)
    main, last = compiled
    return PreparedCell(
        line=line,
        body=body,
        source=source,
        analysis=analysis,
        filename=filename,
        main=main,
        last=last,
        is_async=analysis.has_top_level_await,
        quiet=body.rstrip().endswith(";"),
    )


_transformed: dict[str, str] = {}
_compiled: dict[tuple, tuple[types.CodeType, types.CodeType | None]] = {}
_MEMO_LIMIT = 256


def _remember(memo: dict, key: Any, value: Any) -> Any:
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _compile(
    shell: Any, source: str, filename: str, flags: int
) -> tuple[types.CodeType, types.CodeType | None]:
    """(code of all statements but a final expression, code of that expression)."""
    tree = ast.parse(source)  # a fresh tree: AST transformers may change it
    ast.increment_lineno(tree, 1)  # line 1 of the cell is the %%task line
    tree = shell.transform_ast(tree)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        expression = ast.Expression(tree.body.pop().value)
        last = compile(expression, filename, "eval", flags, dont_inherit=True)
    return compile(tree, filename, "exec", flags, dont_inherit=True), last


def _renderable_syntax_error(
    shell: Any, exc: SyntaxError, filename: str, body: str
) -> CellSyntaxError:
    if exc.lineno is not None:
        exc.lineno += 1
        if exc.end_lineno is not None:
            exc.end_lineno += 1
    exc.filename = filename
    lines = f"\n{body}".splitlines()
    if exc.lineno is not None and 0 < exc.lineno <= len(lines):
        exc.text = lines[exc.lineno - 1] + "\n"
    return CellSyntaxError(exc, shell.SyntaxTB.structured_traceback(type(exc), exc, []))


def execute(prepared: PreparedCell, shell: Any) -> Any:
    """Run the cell's code in the user namespace; return the final expression's value."""
    global_ns, local_ns = shell.user_global_ns, shell.user_ns
    if not prepared.is_async:
        exec(prepared.main, global_ns, local_ns)
        return eval(prepared.last, global_ns, local_ns) if prepared.last is not None else None
    from kernelflow._sync import run_coro_sync

    async def run_all() -> Any:
        outcome = eval(prepared.main, global_ns, local_ns)
        if prepared.main.co_flags & inspect.CO_COROUTINE:
            await outcome
        if prepared.last is None:
            return None
        value = eval(prepared.last, global_ns, local_ns)
        if prepared.last.co_flags & inspect.CO_COROUTINE:
            value = await value
        return value

    # The kernel's own loop is running in this thread: the cell's coroutine gets
    # a loop of its own in a helper thread (see kernelflow._sync.run_coro_sync).
    return run_coro_sync(run_all())
