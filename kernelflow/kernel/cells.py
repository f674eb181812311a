"""What a ``%%task`` cell reads and writes, found from its code.

A cell's **inputs** are the names it may read from the notebook's namespace as
it stands before the run: names loaded at the top level, and names that
functions, lambdas, classes and comprehensions defined in the cell read as
globals. A name the cell binds unconditionally before its first read (``x = 1``
then ``print(x)``) is not an input; a read in the same statement as the binding
(``x = x + 1``, ``x += 1``) is.

Its **outputs** are the names it binds at the top level: assignments (plain,
annotated, augmented, tuple and starred), ``def``, ``class``, ``import``,
``for`` and ``with`` targets, walrus targets, ``except ... as``, ``match``
captures, and names declared ``global`` and assigned in a nested function.

Scoping is delegated to :mod:`symtable`, CPython's own resolver, one top-level
statement at a time; the statement order gives "bound before read". The result
is memoized per cell source, so re-running a cell costs a dictionary lookup.

The **code hash** is taken over the AST (``ast.dump``), so comments, blank
lines and formatting do not change a cell's cache key.
"""

from __future__ import annotations

import ast
import symtable
import sys
from dataclasses import dataclass, field

__all__ = ["CellAnalysis", "analyze", "default_name"]

# Simple statements whose bindings happen whenever the statement completes.
_UNCONDITIONAL = (
    ast.Assign,
    ast.AugAssign,
    ast.AnnAssign,
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)
_MEMO_LIMIT = 512
# try/except* (ast.TryStar) exists from Python 3.11 on; it has the fields of a try.
if sys.version_info >= (3, 11):
    _TRY = (ast.Try, ast.TryStar)
else:
    _TRY = (ast.Try,)


@dataclass(frozen=True)
class CellAnalysis:
    """The names a cell reads and writes, and its normalised code.

    Attributes
    ----------
    tree
        The parsed cell (do not mutate: it is shared by every run of this source).
    reads
        Candidate inputs in order of first read; the caller keeps those that
        exist in the namespace before the run.
    outputs
        Names the cell binds, in order of first binding.
    code_hash
        Hash of the cell's AST: insensitive to comments and whitespace.
    has_top_level_await
        Whether the cell uses ``await``/``async for``/``async with`` outside functions.
    binding_lines
        Line (1-based, within the analysed source) where each output is first bound.
    imports
        Outputs bound only by ``import`` statements.
    attributes
        Name -> attributes the cell loads from it (``mymod.SCALE``).
    path_literals, path_names
        Paths (string literals) and names of variables passed to reading
        calls such as ``open`` or ``pandas.read_csv`` (see :mod:`.files`).
    write_literals, write_names
        The same for writing calls (``np.save``, ``df.to_csv``, ``savefig``).
    deletes
        Names the cell deletes at the top level (``del tmp``).
    opaque
        What in the cell reads state kernelflow cannot see: shell commands
        (``!head data.csv``) and magics other than a few that only configure
        (``%whos``, ``%time f(x)``), as (what, why) pairs.
    """

    tree: ast.Module
    reads: tuple[str, ...]
    outputs: tuple[str, ...]
    code_hash: str
    has_top_level_await: bool
    binding_lines: dict[str, int]
    imports: frozenset[str] = frozenset()
    attributes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    path_literals: tuple[str, ...] = ()
    path_names: tuple[str, ...] = ()
    write_literals: tuple[str, ...] = ()
    write_names: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    opaque: tuple[tuple[str, str], ...] = ()


_memo: dict[str, CellAnalysis] = {}


def analyze(source: str) -> CellAnalysis:
    """Analyse a cell's (already IPython-transformed) Python source.

    Raises
    ------
    SyntaxError
        The source is not valid Python.
    """
    found = _memo.get(source)
    if found is not None:
        return found
    from kernelflow.hashing import hash_bytes
    from kernelflow.kernel.files import path_arguments, written_paths

    tree = ast.parse(source, mode="exec", type_comments=False)
    names = _Names()
    names.block(tree.body, frozenset())
    reads, outputs = names.reads, names.writes
    path_literals, path_names = path_arguments(tree)
    write_literals, write_names = written_paths(tree)
    analysis = CellAnalysis(
        tree=tree,
        reads=tuple(reads),
        outputs=tuple(outputs),
        code_hash=hash_bytes("cell", ast.dump(tree, annotate_fields=False)),
        has_top_level_await=_has_top_level_await(tree),
        binding_lines=outputs,
        imports=frozenset(names.imports - names.assigned),
        attributes=_attribute_reads(tree),
        path_literals=path_literals,
        path_names=path_names,
        write_literals=write_literals,
        write_names=write_names,
        opaque=_opaque_calls(tree),
        deletes=tuple(
            target.id
            for stmt in tree.body
            if isinstance(stmt, ast.Delete)
            for target in stmt.targets
            if isinstance(target, ast.Name)
        ),
    )
    if len(_memo) >= _MEMO_LIMIT:
        _memo.clear()
    _memo[source] = analysis
    return analysis


def default_name(analysis: CellAnalysis) -> str:
    """A cell's task name when ``%%task`` gives none: its first assigned output, else ``cell``.

    Imported names are skipped (``import pandas as pd`` names no cell ``pd``),
    and so are names starting with ``_``.
    """
    for name in analysis.outputs:
        if not name.startswith("_") and name not in analysis.imports:
            return name
    return "cell"


class _Names:
    """Walks statements in order, tracking which names are surely bound at each point."""

    def __init__(self) -> None:
        self.reads: dict[str, None] = {}
        self.writes: dict[str, int] = {}
        self.imports: set[str] = set()
        self.assigned: set[str] = set()

    def block(self, stmts: list[ast.stmt], bound: frozenset[str]) -> frozenset[str]:
        """Record the names of ``stmts``; return the names surely bound after them."""
        for stmt in stmts:
            bound = self.statement(stmt, bound)
        return bound

    def statement(self, stmt: ast.stmt, bound: frozenset[str]) -> frozenset[str]:
        line = stmt.lineno
        if isinstance(stmt, (ast.For, ast.AsyncFor)):
            bound |= self.expression(stmt.iter, bound, line)
            targets = self.bind(stmt.target, line)
            self.block(stmt.body, bound | targets)  # the loop may not run: nothing is sure
            self.block(stmt.orelse, bound)
            return bound
        if isinstance(stmt, ast.While):
            bound |= self.expression(stmt.test, bound, line)
            self.block(stmt.body, bound)
            self.block(stmt.orelse, bound)
            return bound
        if isinstance(stmt, ast.If):
            bound |= self.expression(stmt.test, bound, line)
            return self.block(stmt.body, bound) & self.block(stmt.orelse, bound)
        if isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                bound |= self.expression(item.context_expr, bound, line)
                if item.optional_vars is not None:
                    bound |= self.bind(item.optional_vars, line)
            return self.block(stmt.body, bound)
        if isinstance(stmt, _TRY):
            self.block(stmt.body, bound)
            for handler in stmt.handlers:
                caught = bound
                if handler.type is not None:
                    caught |= self.expression(handler.type, bound, handler.lineno)
                if handler.name:
                    self.writes.setdefault(handler.name, handler.lineno)
                    caught |= {handler.name}
                self.block(handler.body, caught)
            self.block(stmt.orelse, bound)
            return self.block(stmt.finalbody, bound)
        if isinstance(stmt, ast.Match):
            bound |= self.expression(stmt.subject, bound, line)
            for case in stmt.cases:
                captured = bound | self.bind(case.pattern, line)
                if case.guard is not None:
                    captured |= self.expression(case.guard, captured, line)
                self.block(case.body, captured)
            return bound
        reads, writes = _simple_statement_names(stmt)
        self.read(reads, bound)
        for name in writes:
            self.writes.setdefault(name, line)
        (self.imports if isinstance(stmt, (ast.Import, ast.ImportFrom)) else self.assigned).update(
            writes
        )
        return bound | set(writes) if isinstance(stmt, _UNCONDITIONAL) else bound

    def expression(self, expr: ast.expr, bound: frozenset[str], line: int) -> frozenset[str]:
        """Record an expression's reads; return the names it binds (walrus)."""
        table = symtable.symtable(ast.unparse(expr), "<cell>", "eval")
        reads, writes = _table_names(table, None)
        self.read(reads, bound)
        for name in writes:
            self.writes.setdefault(name, line)
        return frozenset(writes)

    def bind(self, target: ast.AST, line: int) -> frozenset[str]:
        """Record the names a target or pattern binds (reads in it, e.g. ``a[i]``, too)."""
        names: dict[str, None] = {}  # ordered: outputs are listed as written
        for node in ast.walk(target):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Store):
                    names.setdefault(node.id)
                else:
                    self.reads.setdefault(node.id)
            elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
                names.setdefault(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                names.setdefault(node.rest)
        for name in names:
            self.writes.setdefault(name, line)
            self.assigned.add(name)
        return frozenset(names)

    def read(self, names: list[str], bound: frozenset[str]) -> None:
        for name in names:
            if name not in bound:
                self.reads.setdefault(name)


def _simple_statement_names(stmt: ast.stmt) -> tuple[list[str], list[str]]:
    """(names read from outside, names bound at module level) of one simple statement."""
    source = ast.unparse(ast.Module(body=[stmt], type_ignores=[]))
    table = symtable.symtable(source, "<cell>", "exec")
    own_name = (
        getattr(stmt, "name", None)
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        else None
    )
    reads, writes = _table_names(table, own_name)
    if isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name):
        # symtable marks ``x += 1`` as an assignment only; it reads x first.
        reads.insert(0, stmt.target.id)
    if isinstance(stmt, ast.Delete):
        writes = []  # ``del x`` unbinds: x is no output
    return reads, writes


def _table_names(table: symtable.SymbolTable, own_name: str | None) -> tuple[list[str], list[str]]:
    reads: list[str] = []
    writes: list[str] = []
    for symbol in table.get_symbols():
        name = symbol.get_name()
        if symbol.is_referenced():
            reads.append(name)
        if symbol.is_assigned() or symbol.is_imported():
            writes.append(name)
    for name, referenced, assigned in _nested_globals(table):
        # A function may call itself by name: that read happens after the def bound it.
        if referenced and name != own_name and name not in reads:
            reads.append(name)
        if assigned and name not in writes:
            writes.append(name)
    return reads, writes


def _nested_globals(table: symtable.SymbolTable) -> list[tuple[str, bool, bool]]:
    """(name, referenced, assigned) for every global a nested scope uses."""
    found: list[tuple[str, bool, bool]] = []
    for child in table.get_children():
        for symbol in child.get_symbols():
            if not symbol.is_global():
                continue
            assigned = symbol.is_declared_global() and symbol.is_assigned()
            if symbol.is_referenced() or assigned:
                found.append((symbol.get_name(), symbol.is_referenced(), assigned))
        found.extend(_nested_globals(child))
    return found


# Magics that only configure the session: what they do cannot change a cell's result
# without showing up in its inputs (a reloaded module, the plotting backend).
_CONFIGURING_MAGICS = frozenset(
    {"matplotlib", "load_ext", "reload_ext", "unload_ext", "autoreload", "aimport", "config"}
)


_UNSEEN = "which reads what kernelflow cannot see"


def _opaque_calls(tree: ast.Module) -> tuple[tuple[str, str], ...]:
    """Shell commands and magics in the (IPython-transformed) code: (what, why) pairs."""
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Call)
            and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython"
        ):
            continue
        method = node.func.attr
        first = node.args[0] if node.args else None
        value = first.value if isinstance(first, ast.Constant) else None
        text = value if isinstance(value, str) else None
        if method in ("system", "getoutput"):
            command = str(text).split(maxsplit=1)[0] if text else "..."
            found.setdefault(f"'!{command}'", f"a shell command, {_UNSEEN}")
        elif method in ("run_line_magic", "run_cell_magic") and text not in _CONFIGURING_MAGICS:
            prefix = "%" if method == "run_line_magic" else "%%"
            found.setdefault(f"'{prefix}{text}'", f"a magic, {_UNSEEN}")
    return tuple(found.items())


def _attribute_reads(tree: ast.Module) -> dict[str, tuple[str, ...]]:
    """Name -> attributes loaded from it anywhere in the cell (``np.pi``, ``cfg.SCALE``)."""
    found: dict[str, dict[str, None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found.setdefault(node.value.id, {}).setdefault(node.attr)
    return {name: tuple(attributes) for name, attributes in found.items()}


def _has_top_level_await(tree: ast.Module) -> bool:
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False
