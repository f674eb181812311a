"""The machinery of the documentation parity test, checked without running Prefect."""

from __future__ import annotations

import ast
import json
import re

import docs_harness as h
import pytest


class TestTranslate:
    def test_only_import_statements_change(self):
        source = (
            "from prefect import flow, task\n"
            "from prefect.cache_policies import INPUTS  # prefect's policy\n"
            "import prefect\n"
            "import prefect.runtime as rt\n"
            'print("from prefect import flow")\n'
            "x = 'prefect'\n"
        )
        assert h.translate(source) == (
            "from kernelflow import flow, task\n"
            "from kernelflow.cache_policies import INPUTS  # prefect's policy\n"
            "import kernelflow as prefect\n"
            "import kernelflow.runtime as rt\n"
            'print("from prefect import flow")\n'
            "x = 'prefect'\n"
        )

    def test_a_multi_line_import_keeps_its_lines(self):
        source = "from prefect.artifacts import (\n    Artifact,\n    create_link_artifact,\n)\n"
        translated = h.translate(source)
        assert translated.startswith("from kernelflow.artifacts import (\n")
        assert translated.count("\n") == source.count("\n")

    def test_an_import_that_would_not_bind_prefect_is_refused(self):
        with pytest.raises(ValueError, match=r"import prefect\.runtime as name"):
            h.translate("import prefect.runtime\n")

    @pytest.mark.parametrize("name", h.example_names())
    def test_every_example_translates_to_kernelflow_imports_only(self, name):
        tree = ast.parse(h.translate(h.example_path(name).read_text()))
        modules = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(tree)
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in getattr(node, "names", [])
        ]
        assert not [m for m in modules if m and m.split(".")[0] == "prefect"]


class TestExamples:
    def test_there_are_at_least_forty(self):
        assert len(h.example_names()) >= 40

    @pytest.mark.parametrize("name", h.example_names())
    def test_header_names_the_page_the_commit_and_what_was_replaced(self, name):
        doc = ast.get_docstring(ast.parse(h.example_path(name).read_text())) or ""
        assert re.search(r"docs/v3/\S+\.mdx", doc), "the documentation page it comes from"
        assert re.search(r"\b[0-9a-f]{40}\b", doc), "the commit of PrefectHQ/prefect read"
        assert "Scenario:" in doc
        assert re.search(r"^(Replaced|Shortened|Changed|Added|Nothing replaced)", doc, re.M)
        assert "Re-written for this test from the page" in doc

    @pytest.mark.parametrize("name", h.example_names())
    def test_golden_file_is_prefects_and_its_summary_is_current(self, name):
        golden = h.load_golden(name)
        assert golden["prefect"] == h.PREFECT_VERSION
        source = h.example_path(name).read_text()
        assert golden["normalised"] == h.readable(h.normalise(h.Run(**golden["run"]), source)), (
            "the masking changed since recording: run `python tests/prefect_docs/golden.py "
            "--refresh` to rewrite the summaries (no new recording needed)"
        )


STDERR = """\
22:39:22.210 | INFO    | prefect - Starting temporary server on http://127.0.0.1:8938
See https://www.prefect.io/docs/v3/concepts/server#how-to-guides for more information.
22:39:32.359 | INFO    | Flow run 'emotional-emu' - Beginning flow run 'emotional-emu' for flow 'f'
22:39:32.462 | INFO    | Task run 'fetch_stats-e5e' - Finished in state Completed()
22:39:32.470 | WARNING | prefect.concurrency - Concurrency limits ['db'] do not exist
22:39:32.476 | ERROR   | Task run 'hello-marvin-on-Thursday' - failed in /tmp/y.py at 0x7f3a2b1c9d8
Traceback (most recent call last):
  File "/somewhere/prefect/engine.py", line 1, in run
ValueError: boom
22:39:33.451 | INFO    | Flow run 'emotional-emu' - Finished in state Completed()
"""


class TestNormalise:
    def facts(self, stderr=STDERR, stdout="", source="x = 'hello-{name}-on-{day}'\n"):
        return h.normalise(h.Run(0, None, stdout, stderr, 1.0), source)

    def test_log_lines_become_level_kind_message(self):
        assert self.facts()["logs"] == [
            ["INFO", "flow", "Beginning flow run '<flow-run>' for flow 'f'"],
            ["INFO", "task", "Finished in state Completed()"],
            ["WARNING", "concurrency", "Concurrency limits ['db'] do not exist"],
            ["ERROR", "task", "failed in <path> at <addr>"],
            ["INFO", "flow", "Finished in state Completed()"],
        ]

    def test_generated_names_are_masked_in_stdout_too_and_chosen_ones_kept(self):
        stdout = "emotional-emu ran fetch_stats-e5e and hello-marvin-on-Thursday\n\n"
        assert self.facts(stdout=stdout)["stdout"] == [
            "<flow-run> ran fetch_stats-<n> and hello-marvin-on-Thursday"
        ]

    def test_kernelflow_and_prefect_suffixes_mask_alike(self):
        for suffix in ("0", "9eb", "12"):
            stderr = f"10:00:00.000 | INFO    | Task run 'add-{suffix}' - Finished in state X()\n"
            facts = self.facts(stderr=stderr, stdout=f"add-{suffix}\n")
            assert facts["stdout"] == ["add-<n>"]

    def test_the_engine_logger_kind_drops_the_library_prefix(self):
        for logger in ("prefect.engine", "kernelflow.engine"):
            stderr = f"10:00:00.000 | INFO    | {logger} - Created flow run 'a-b' for flow 'f'\n"
            assert self.facts(stderr=stderr)["logs"] == [
                ["INFO", "engine", "Created flow run '<flow-run>' for flow 'f'"]
            ]

    def test_ids_and_times_are_masked(self):
        stdout = (
            "id 0b4d2c3e-1f2a-4b5c-8d9e-0123456789ab at 2024-01-04T10:11:12.5+00:00, 10:11:12\n"
        )
        assert self.facts(stdout=stdout)["stdout"] == ["id <uuid> at <datetime>, <time>"]

    def test_outcome_is_exit_code_and_exception_type(self):
        run = h.Run(1, {"type": "ValueError", "module": "builtins", "message": "x"}, "", "", 1.0)
        assert h.normalise(run, "")["outcome"] == {"exit_code": 1, "exception": "ValueError"}


class TestCompare:
    def test_first_difference_names_the_line(self):
        assert h.first_difference(["a", "b"], ["a", "c"]) == "#2: Prefect 'b', kernelflow 'c'"
        assert h.first_difference(["a"], ["a", "b"]) == "#2: Prefect ends, kernelflow 'b'"
        assert h.first_difference(["a", "b"], ["a"]) == "#2: Prefect 'b', kernelflow ends"
        assert h.first_difference(["a"], ["a"]) is None

    def test_unordered_logs_and_dropped_lines(self):
        facts = {"logs": [["INFO", "task", "b"], ["INFO", "task", "a"], ["INFO", "flow", "x"]]}
        assert h.comparable("logs", facts, ordered=False, drop="^x$") == [
            ["INFO", "task", "a"],
            ["INFO", "task", "b"],
        ]

    def test_readable_summary_is_json(self):
        facts = self.facts_for("10:00:00.000 | INFO    | Flow run 'a-b' - hi\n")
        assert json.loads(json.dumps(h.readable(facts)))["logs"] == ["INFO | flow - hi"]

    @staticmethod
    def facts_for(stderr):
        return h.normalise(h.Run(0, None, "", stderr, 1.0), "")
