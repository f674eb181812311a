"""``kernelflow.settings``: every ``KERNELFLOW_*`` variable declared once and read in one place."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from kernelflow import settings
from kernelflow.errors import ConfigurationError
from kernelflow.settings import Settings, current, variables
from kernelflow.settings._variables import (
    is_declared,
    render_internal_table,
    render_markdown,
    render_table,
)

PACKAGE = Path(settings.__file__).resolve().parent.parent
SETTINGS_PACKAGE = PACKAGE / "settings"

#: attribute -> (a value to set, the value read, a bad value)
CASES = {
    "home": ("~/somewhere", Path("~/somewhere").expanduser(), None),
    "logging_level": ("debug", "DEBUG", "loud"),
    "compact_seconds": ("2m", 120.0, "0"),
    "compact_at_exit": ("Inline", "inline", "later"),
    "compact_background": ("inline", "inline", "child"),
    "journal_rotate_mb": ("0.5", 0.5, "inf"),
    "lock_timeout": ("0", 0.0, "soon"),
    "inline_fold_bytes": ("1", 1, "4MB"),
    "widgets": ("OFF", False, "maybe"),
    "retention": ("90d", 90 * 86400.0, "forever"),
    "tasks_runner_thread_pool_max_workers": ("3", 3, "many"),
}

DEFAULTS = {
    "logging_level": "INFO",
    "compact_seconds": 5.0,
    "compact_at_exit": "detach",
    "compact_background": "auto",
    "journal_rotate_mb": 64.0,
    "lock_timeout": 10.0,
    "inline_fold_bytes": 4 * 1024 * 1024,
    "widgets": True,
    "retention": None,
    "tasks_runner_thread_pool_max_workers": None,
}


def _variable(attribute: str) -> settings.Variable:
    return next(v for v in variables() if v.attribute == attribute)


class TestDeclarations:
    def test_every_variable_has_a_case(self):
        assert {v.attribute for v in variables()} == set(CASES)

    def test_each_name_is_its_attribute(self):
        for v in variables():
            assert v.name == "KERNELFLOW_" + v.attribute.upper()
            assert v.doc and v.shown

    @pytest.mark.parametrize("attribute", sorted(DEFAULTS))
    def test_unset_or_blank_is_the_default(self, attribute):
        name = _variable(attribute).name
        assert getattr(Settings({}), attribute) == DEFAULTS[attribute]
        assert getattr(Settings({name: "  "}), attribute) == DEFAULTS[attribute]

    def test_the_default_home_follows_home(self, monkeypatch, tmp_path):
        monkeypatch.setenv("HOME", str(tmp_path))
        assert Settings({}).home == tmp_path / ".kernelflow"

    @pytest.mark.parametrize("attribute", sorted(CASES))
    def test_a_value_is_parsed(self, attribute):
        raw, expected, _ = CASES[attribute]
        assert getattr(Settings({_variable(attribute).name: raw}), attribute) == expected

    @pytest.mark.parametrize("attribute", sorted(a for a, c in CASES.items() if c[2] is not None))
    def test_a_bad_value_is_one_line_naming_the_variable(self, attribute):
        name, bad = _variable(attribute).name, CASES[attribute][2]
        with pytest.raises(ConfigurationError) as caught:
            getattr(Settings({name: bad}), attribute)
        message = str(caught.value)
        assert message.startswith(f"{name}={bad!r} ")
        assert "set it to" in message and "\n" not in message

    def test_a_bad_value_stops_only_its_own_setting(self):
        read = Settings({"KERNELFLOW_RETENTION": "forever", "KERNELFLOW_LOCK_TIMEOUT": "3"})
        assert read.lock_timeout == 3.0
        with pytest.raises(ConfigurationError, match="KERNELFLOW_RETENTION='forever'"):
            _ = read.retention

    def test_settings_are_read_only(self):
        read = Settings({})
        with pytest.raises(AttributeError, match="KERNELFLOW_WIDGETS"):
            read.widgets = False  # type: ignore[misc]

    def test_raw_is_the_text_as_set(self):
        read = Settings({"KERNELFLOW_WIDGETS": " Off "})
        assert read.raw("widgets") == " Off "
        assert read.raw("retention") is None
        with pytest.raises(AttributeError):
            read.raw("nothing")


class TestCurrent:
    def test_cached_while_the_environment_stays(self):
        assert current() is current()

    def test_a_change_is_seen_at_the_next_read(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "3")
        before = current()
        assert before.lock_timeout == 3.0
        monkeypatch.setenv("KERNELFLOW_LOCK_TIMEOUT", "4")
        assert current() is not before
        assert current().lock_timeout == 4.0
        monkeypatch.delenv("KERNELFLOW_LOCK_TIMEOUT")
        assert current().lock_timeout == 10.0

    def test_a_value_is_parsed_once_per_environment(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_COMPACT_SECONDS", "7")
        read = current()
        assert read.compact_seconds == 7.0
        # Remembered on the instance: the descriptor (and its parse) is not run again.
        assert read.__dict__["compact_seconds"] == 7.0

    @pytest.mark.no_temporary_store  # no override: KERNELFLOW_HOME decides
    def test_use_home_and_kernelflow_home_move_the_paths(self, monkeypatch, tmp_path):
        # The suite's own store may be set with use_home (it wins over the variable).
        outer = settings.use_home(None)
        try:
            monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "a"))
            assert settings.paths().home == tmp_path / "a" == settings.home()
            previous = settings.use_home(tmp_path / "b")
            try:
                assert settings.paths().home == tmp_path / "b" == settings.home()
                assert settings.home_token() == tmp_path / "b"
            finally:
                settings.use_home(previous)
            monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "c"))
            assert settings.paths().home == tmp_path / "c"
        finally:
            settings.use_home(outer)


class TestInternal:
    def test_declared_names_are_read(self, monkeypatch):
        monkeypatch.setenv("KERNELFLOW_PARENT_FLOW_RUN_ID", "abc")
        assert settings.internal("KERNELFLOW_PARENT_FLOW_RUN_ID") == "abc"
        monkeypatch.setenv("KERNELFLOW__RUNTIME__FLOW_RUN__NAME", "x")
        assert settings.internal("KERNELFLOW__RUNTIME__FLOW_RUN__NAME") == "x"
        monkeypatch.delenv("KERNELFLOW_DEPLOYMENT_RUN", raising=False)
        assert settings.internal(settings.DEPLOYMENT_RUN) is None

    def test_an_undeclared_name_is_refused(self):
        with pytest.raises(KeyError, match="KERNELFLOW_NOT_A_THING"):
            settings.internal("KERNELFLOW_NOT_A_THING")
        with pytest.raises(KeyError):
            settings.internal("KERNELFLOW_WIDGETS")  # public: read through current()


class TestNoDrift:
    def test_the_docstring_lists_every_variable(self):
        doc = settings.__doc__ or ""
        assert render_table() in doc, (
            "kernelflow/settings/__init__.py's docstring is out of date: paste "
            "kernelflow.settings._variables.render_table() into it"
        )
        assert render_internal_table() in doc

    def test_the_readme_lists_every_variable(self):
        readme = (PACKAGE.parent / "README.md").read_text()
        assert render_markdown() in readme, (
            "README.md's Configuration table is out of date: paste "
            "kernelflow.settings._variables.render_markdown() into it"
        )

    def test_every_kernelflow_name_in_the_package_is_declared(self):
        undeclared = {}
        for path in PACKAGE.rglob("*.py"):
            for name in re.findall(r"KERNELFLOW_[A-Z0-9_]+", path.read_text()):
                if name != "KERNELFLOW_" and not is_declared(name):
                    undeclared.setdefault(name, str(path.relative_to(PACKAGE.parent)))
        assert not undeclared, f"declare these in kernelflow/settings/_variables.py: {undeclared}"

    def test_no_module_reads_a_kernelflow_variable_itself(self):
        reads = []
        constants = _kernelflow_constants()
        for path in PACKAGE.rglob("*.py"):
            if SETTINGS_PACKAGE in path.parents:
                continue
            for line, key in _environ_reads(ast.parse(path.read_text()), constants):
                if key is None or key.startswith("KERNELFLOW_"):
                    reads.append(f"{path.relative_to(PACKAGE.parent)}:{line} {key or '?'}")
        assert not reads, f"read these through kernelflow.settings: {reads}"

    def test_the_scan_finds_each_kind_of_read(self):
        source = (
            "import os\n"
            "NAME = 'KERNELFLOW_X'\n"
            "os.environ.get('KERNELFLOW_A')\n"
            "os.getenv(NAME)\n"
            "os.environ['KERNELFLOW_B']\n"
            "'KERNELFLOW_C' in os.environ\n"
            "os.environ._data.get(b'KERNELFLOW_D')\n"
            "getattr(os.environ, '_data', None)\n"
            "os.environ.get(f'KERNELFLOW_{NAME}')\n"
            "os.environ['KERNELFLOW_E'] = '1'\n"
            "os.environ.get('JPY_SESSION_NAME')\n"
        )
        found = sorted(_environ_reads(ast.parse(source), {"NAME": "KERNELFLOW_X"}))
        assert [key for _, key in found] == [
            "KERNELFLOW_A",
            "KERNELFLOW_X",
            "KERNELFLOW_B",
            "KERNELFLOW_C",
            None,
            None,
            None,
            "JPY_SESSION_NAME",
        ]


def _kernelflow_constants() -> dict[str, str]:
    """Module-level ``NAME = "KERNELFLOW_..."`` anywhere in the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and node.value.value.startswith("KERNELFLOW_")
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        found[target.id] = node.value.value
    return found


def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
        isinstance(node, ast.Name) and node.id == "environ"
    )


def _key(node: ast.AST | None, constants: dict[str, str]) -> str | None:
    """The variable a read names, when it can be known (None: computed)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id, f"<{node.id}>")
    if isinstance(node, ast.Attribute):
        return constants.get(node.attr, f"<{node.attr}>")
    return None


def _environ_reads(tree: ast.AST, constants: dict[str, str]):
    """(line, variable) of each read of the environment (writes are not reads)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            reads_environ = func.attr == "get" and _is_environ(func.value)
            if func.attr == "getenv" or reads_environ:
                first = node.args[0] if node.args else None
                yield node.lineno, _key(first, constants)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            # getattr(os.environ, "_data"): the raw mapping, read past os.environ
            if node.func.id == "getattr" and node.args and _is_environ(node.args[0]):
                yield node.lineno, None
        elif isinstance(node, ast.Attribute) and node.attr == "_data" and _is_environ(node.value):
            yield node.lineno, None
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            if _is_environ(node.value):
                yield node.lineno, _key(node.slice, constants)
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            if isinstance(node.ops[0], ast.In | ast.NotIn) and _is_environ(node.comparators[0]):
                yield node.lineno, _key(node.left, constants)
