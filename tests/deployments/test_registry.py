"""Deploying: every bad input refused in one line before anything is stored; snapshots; the CLI."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernelflow.deployments import delete as delete_deployment
from kernelflow.deployments import deploy, get, list_deployments, pause, resume
from kernelflow.deployments.project import apply_project
from kernelflow.errors import ConfigurationError, DeploymentNotFoundError


@pytest.fixture
def nb(make_notebook):
    return make_notebook("report", "print(n)", parameters='n: int = 1\nday = "2026-01-01"')


class TestBadInput:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"cron": "0 25 * * *"}, "the hour field '25' is not valid"),
            ({"cron": "0 6 * * *", "timezone": "Europe/Nowhere"}, "Unknown time zone"),
            ({"interval": 0}, "--interval must be a finite number of seconds > 0"),
            ({"interval": -3}, "--interval must be a finite number of seconds > 0"),
            ({"interval": 5, "cron": "* * * * *"}, "not both"),
            (
                {"interval": 5, "parameters": {"m": "1"}},
                "has no parameter 'm'; its parameters are: n \\(int\\), day \\(str\\)",
            ),
            (
                {"interval": 5, "parameters": {"n": "ten"}},
                "Parameter 'n' .* is an int; 'ten' is not",
            ),
            (
                {"interval": 5, "kernel": "no-such-kernel"},
                "Kernel 'no-such-kernel' is not installed",
            ),
            ({"interval": 5, "after": "ghost"}, "--after 'ghost' names no deployment"),
            ({"interval": 5, "catchup": "sometimes"}, "--catchup must be one of"),
            ({"interval": 5, "retries": -1}, "--retries must be a whole number >= 0"),
            ({"interval": 5, "timeout": 0}, "--timeout must be a finite number of seconds > 0"),
            ({"interval": 5, "limit": 0}, "--limit must be a whole number >= 1"),
            ({"interval": 5, "notify": ["ftp://x"]}, "--notify needs an http"),
        ],
    )
    def test_refused_with_one_line(self, nb, kwargs, message):
        with pytest.raises(ConfigurationError, match=message) as caught:
            deploy(nb, "r", **kwargs)
        assert "\n" not in str(caught.value)
        assert list_deployments() == []

    def test_missing_and_invalid_notebooks(self, tmp_path):
        with pytest.raises(ConfigurationError, match="does not exist"):
            deploy(tmp_path / "nope.ipynb", "r", interval=5)
        bad = tmp_path / "bad.ipynb"
        bad.write_text('{"cells": 3}')
        with pytest.raises(ConfigurationError, match="is not a valid notebook"):
            deploy(bad, "r", interval=5)

    def test_parameters_without_a_parameters_cell(self, make_notebook):
        plain = make_notebook("plain", "print(1)", parameters=None)
        with pytest.raises(ConfigurationError, match=r"no cell tagged 'parameters'.*add the tag"):
            deploy(plain, "r", interval=5, parameters={"n": 1})

    def test_existing_name_needs_update(self, nb):
        deploy(nb, "r", interval=5)
        with pytest.raises(ConfigurationError, match="already exists; pass --update"):
            deploy(nb, "r", interval=7)
        assert get("r").interval == 5
        assert deploy(nb, "r", interval=7, update=True).interval == 7

    def test_after_cycle(self, nb):
        deploy(nb, "a", interval=5)
        deploy(nb, "b", after="a")
        with pytest.raises(ConfigurationError, match="makes a cycle \\(a -> b -> a\\)"):
            deploy(nb, "a", after="b", update=True)

    def test_bad_names(self, nb):
        with pytest.raises(ConfigurationError, match="is not allowed"):
            deploy(nb, "../etc", interval=5)

    @pytest.mark.slow
    def test_unreachable_dask_address(self, nb):
        with pytest.raises(ConfigurationError, match="No Dask scheduler answers at"):
            deploy(nb, "r", interval=5, dask="tcp://127.0.0.1:1")


class TestSnapshot:
    def test_later_edits_change_nothing_until_redeployed(self, nb, store):
        first = deploy(nb, "r", interval=60, parameters={"n": "3"})
        assert first.parameters == {"n": 3}
        snapshot = first.snapshot_path(store.home)
        original = snapshot.read_bytes()
        assert original == nb.read_bytes()
        nb.write_text(nb.read_text().replace("print(n)", "print(n * 2)"))
        assert get("r").snapshot_path(store.home).read_bytes() == original
        second = deploy(nb, "r", interval=60, parameters={"n": "3"}, update=True)
        assert second.content_hash != first.content_hash
        assert b"print(n * 2)" in second.snapshot_path(store.home).read_bytes()

    def test_unchanged_update_is_idempotent(self, nb):
        first = deploy(nb, "r", cron="0 6 * * *", timezone="Europe/Berlin")
        again = deploy(nb, "r", cron="0 6 * * *", timezone="Europe/Berlin", update=True)
        assert again.updated == first.updated and again.id == first.id

    def test_pause_resume_delete_and_the_table(self, nb, store):
        deployment = deploy(nb, "r", interval=60, tags=["b", "a"])
        assert pause("r").paused and not resume("r").paused
        rows = store.sql(
            "SELECT name, schedule, paused, array_to_string(tags, ',') AS tags FROM deployments"
        )
        assert rows.to_dict("records") == [
            {"name": "r", "schedule": "every 60 s", "paused": False, "tags": "a,b"}
        ]
        delete_deployment("r")
        with pytest.raises(DeploymentNotFoundError, match="kernelflow deployment ls"):
            get("r")
        assert not deployment.snapshot_path(store.home).exists()


def test_project_file_applies_idempotently(nb, tmp_path):
    project = tmp_path / "kernelflow.yaml"
    project.write_text(
        "deployments:\n"
        "  - name: downstream\n    notebook: report.ipynb\n    after: upstream\n"
        "  - name: upstream\n    notebook: report.ipynb\n    cron: '0 6 * * *'\n"
        "    timezone: Europe/Berlin\n    parameters: {n: 4}\n    tags: x,y\n"
    )
    assert apply_project(project) == [("upstream", "created"), ("downstream", "created")]
    assert apply_project(project) == [("upstream", "unchanged"), ("downstream", "unchanged")]
    assert get("upstream").parameters == {"n": 4} and get("downstream").after == "upstream"
    project.write_text(project.read_text().replace("{n: 4}", "{n: 5}"))
    assert apply_project(project)[0] == ("upstream", "updated")
    project.write_text("deployments:\n  - name: x\n    notebook: report.ipynb\n    colour: red\n")
    with pytest.raises(ConfigurationError, match="unknown keys \\['colour'\\]"):
        apply_project(project)


class TestCommandLine:
    def kernelflow(self, *args, cwd):
        return subprocess.run(
            [sys.executable, "-m", "kernelflow.cli", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=120,
        )

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--cron", "0 0 * 13 *"], "the month field '13' is not valid"),
            (["--interval", "0"], "--interval must be a finite number of seconds > 0"),
            (
                ["--interval", "5", "-p", "n=x"],
                "Parameter 'n' of notebook 'report.ipynb' is an int",
            ),
            (["--interval", "5", "-p", "nokey"], "-p 'nokey' is not KEY=VALUE"),
            (["--interval", "5", "--timezone", "Moon/Base"], "Unknown time zone 'Moon/Base'"),
        ],
    )
    def test_bad_input_is_one_line_exit_2(self, nb, tmp_path, args, message):
        done = self.kernelflow("deploy", str(nb), "--name", "r", *args, cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr

    def test_deploy_ls_inspect_pause_delete(self, nb, tmp_path):
        done = self.kernelflow(
            "deploy",
            str(nb),
            "--name",
            "daily",
            "--cron",
            "0 6 * * *",
            "--timezone",
            "Europe/Berlin",
            "-p",
            "n=5",
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "Deployed 'daily' (cron '0 6 * * *' (Europe/Berlin), active)" in done.stdout
        listing = self.kernelflow("deployment", "ls", cwd=tmp_path).stdout
        assert "daily" in listing and "active" in listing
        shown = self.kernelflow("deployment", "inspect", "daily", cwd=tmp_path).stdout
        rows = [
            [c.strip() for c in line.split("│")[1:-1]]
            for line in shown.splitlines()
            if line.count("│") == 5
        ]
        assert ["n", "int", "1", "5"] in rows and ["day", "str", "'2026-01-01'", ""] in rows
        assert (
            "Paused 'daily'."
            in self.kernelflow("deployment", "pause", "daily", cwd=tmp_path).stdout
        )
        assert "paused" in self.kernelflow("deployment", "ls", cwd=tmp_path).stdout
        missing = self.kernelflow("deployment", "inspect", "nope", cwd=tmp_path)
        assert missing.returncode == 1 and "No deployment is called 'nope'" in missing.stderr
        assert (
            "Deleted 'daily'."
            in self.kernelflow("deployment", "delete", "daily", cwd=tmp_path).stdout
        )
