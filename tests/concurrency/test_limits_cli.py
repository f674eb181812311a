"""``kernelflow concurrency-limit`` and ``kernelflow gcl`` on a real store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kernelflow.cli import main
from kernelflow.concurrency import limit_status, read_limit
from kernelflow.concurrency.sync import concurrency
from kernelflow.errors import LimitNotFoundError

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), prog_name="kernelflow")

    return invoke


def one_line_error(result: Result) -> str:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


class TestConcurrencyLimitCommands:
    def test_create_ls_inspect_delete(self, cli):
        result = cli("concurrency-limit", "create", "external-api", "5")
        assert result.exit_code == 0, result.output
        assert read_limit("external-api").limit == 5
        listing = cli("concurrency-limit", "ls")
        assert listing.exit_code == 0
        row = next(line for line in listing.output.splitlines() if "external-api" in line)
        assert [c.strip() for c in row.strip("│ ").split("│")][:3] == ["external-api", "5", "0"]
        assert cli("concurrency-limit", "delete", "external-api").exit_code == 0
        with pytest.raises(LimitNotFoundError):
            read_limit("external-api")
        assert "No concurrency limits" in cli("concurrency-limit", "ls").output

    def test_create_again_changes_the_limit(self, cli):
        cli("concurrency-limit", "create", "db", "2")
        result = cli("concurrency-limit", "create", "db", "4")
        assert result.exit_code == 0 and "Updated" in result.output
        assert read_limit("db").limit == 4

    def test_inspect_shows_who_holds_the_slots(self, cli):
        cli("concurrency-limit", "create", "db", "3")
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with concurrency("db", occupy=2):
                held.set()
                release.wait(10)

        holder = threading.Thread(target=hold, name="holder-thread")
        holder.start()
        try:
            assert held.wait(10)
            result = cli("concurrency-limit", "inspect", "db")
        finally:
            release.set()
            holder.join(10)
        assert result.exit_code == 0, result.output
        assert "occupied now: 2" in result.output
        rows = [line for line in result.output.splitlines() if "holder-thread" in line]
        assert len(rows) == 2
        assert all(str(os.getpid()) in row for row in rows)

    @pytest.mark.parametrize("limit", ["0", "-1"])
    def test_a_limit_below_one_is_refused(self, cli, limit):
        result = cli("concurrency-limit", "create", "db", "--", limit)
        assert result.exit_code == 2
        assert "whole number >= 1" in one_line_error(result)

    def test_unknown_names(self, cli):
        for command in ("inspect", "delete"):
            result = cli("concurrency-limit", command, "nope")
            assert result.exit_code == 1
            assert "kernelflow concurrency-limit create nope" in one_line_error(result)


class TestGclCommands:
    def test_create_update_enable_disable_delete(self, cli):
        result = cli(
            "gcl", "create", "third-party-rps", "--limit", "10", "--slot-decay-per-second", "10"
        )
        assert result.exit_code == 0, result.output
        definition = read_limit("third-party-rps")
        assert (definition.limit, definition.slot_decay_per_second) == (10, 10.0)
        assert cli("gcl", "update", "third-party-rps", "--limit", "20").exit_code == 0
        assert read_limit("third-party-rps").limit == 20
        assert cli("gcl", "disable", "third-party-rps").exit_code == 0
        assert read_limit("third-party-rps").active is False
        assert cli("gcl", "update", "third-party-rps", "--enable").exit_code == 0
        assert read_limit("third-party-rps").active is True
        inspect = cli("gcl", "inspect", "third-party-rps")
        assert "rate limit" in inspect.output and "decaying 10/s" in inspect.output
        assert "third-party-rps" in cli("gcl", "ls").output
        assert cli("gcl", "delete", "third-party-rps").exit_code == 0
        with pytest.raises(LimitNotFoundError):
            read_limit("third-party-rps")

    def test_bad_input_is_one_line(self, cli):
        cli("gcl", "create", "k", "--limit", "1")
        cases = [
            (("gcl", "create", "k", "--limit", "2"), 2, "gcl update k"),
            (("gcl", "create", "z", "--limit", "0"), 2, "whole number >= 1"),
            (
                ("gcl", "create", "z", "--limit", "1", "--slot-decay-per-second", "-1"),
                2,
                "slot_decay_per_second",
            ),
            (("gcl", "update", "k"), 2, "Nothing to update"),
            (("gcl", "update", "nope", "--limit", "2"), 1, "gcl create nope"),
            (("gcl", "create", "a/b", "--limit", "1"), 2, "cannot name a concurrency limit"),
        ]
        for args, code, text in cases:
            result = cli(*args)
            assert result.exit_code == code, (args, result.output)
            assert text in one_line_error(result), args
        assert cli("gcl", "create", "z", "--limit", "x").exit_code == 2

    def test_limits_made_by_either_command_are_one_set(self, cli):
        cli("gcl", "create", "shared", "--limit", "1")
        with concurrency("shared"):
            assert limit_status("shared").occupied == 1
        result = cli("concurrency-limit", "inspect", "shared")
        assert "concurrency limit shared" in result.output


def test_the_installed_command_runs_as_a_program():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kernelflow.cli",
            "concurrency-limit",
            "create",
            "external-api",
            "5",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert read_limit("external-api").limit == 5
