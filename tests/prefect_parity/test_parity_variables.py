"""``kernelflow.variables.Variable`` and ``kernelflow.blocks.system.Secret``: Prefect's
variables and secret block, stored in the store, read back at once from any process;
secrets never readable by a query, never in a journal, a log or ``runs show``."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import uuid

import pytest
from click.testing import CliRunner

import kernelflow
from kernelflow import flow, get_run_logger, task
from kernelflow.blocks.system import Secret, SecretValue
from kernelflow.cli import main
from kernelflow.settings import paths
from kernelflow.variables import Variable


class TestVariable:
    def test_set_get_unset(self):
        assert Variable.get("batch_size") is None
        assert Variable.get("batch_size", default=10) == 10
        created = Variable.set("batch_size", 500, tags=["etl"])
        assert (created.name, created.value, created.tags) == ("batch_size", 500, ["etl"])
        assert Variable.get("batch_size") == 500
        assert Variable.unset("batch_size") is True
        assert Variable.unset("batch_size") is False
        assert Variable.get("batch_size", default="gone") == "gone"

    def test_an_existing_name_needs_overwrite(self):
        Variable.set("region", "eu")
        with pytest.raises(ValueError, match=r"'region' already exists\. Use `overwrite=True`"):
            Variable.set("region", "us")
        assert Variable.get("region") == "eu"
        updated = Variable.set("region", "us", overwrite=True)
        assert updated == Variable("region", "us", [])
        assert Variable.get("region") == "us"

    @pytest.mark.parametrize(
        "value",
        ["text", 0, -3, 2.5, True, False, None, [1, "a", None], {"nested": {"list": [1, 2]}}],
    )
    def test_json_values_read_back_equal(self, value):
        Variable.set("v", value)
        assert Variable.get("v", default="missing") == value
        assert type(Variable.get("v", default="missing")) is type(value)

    def test_a_tuple_reads_back_as_a_list(self):
        assert Variable.set("pair", (1, 2)).value == [1, 2]
        assert Variable.get("pair") == [1, 2]

    def test_generic_form_reads_the_same(self):
        Variable.set("typed", "abc")
        assert Variable[str].get("typed") == "abc"

    @pytest.mark.parametrize(
        "name", ["UPPER", "has space", "dot.name", "slash/name", "", "x" * 256, 3]
    )
    def test_names_as_prefect_allows(self, name):
        with pytest.raises(ValueError, match=r"[Vv]ariable name"):
            Variable.set(name, 1)

    def test_allowed_names(self):
        for name in ("a", "snake_case", "kebab-case", "mixed-9_x", "x" * 255):
            Variable.set(name, 1)
            assert Variable.get(name) == 1

    def test_values_must_be_json_and_at_most_5000_characters(self):
        with pytest.raises(ValueError, match="serializable to JSON"):
            Variable.set("bad", {1, 2})
        with pytest.raises(ValueError, match="serializable to JSON"):
            Variable.set("nan", float("nan"))
        with pytest.raises(ValueError, match="less than 5000 characters"):
            Variable.set("big", "x" * 5000)
        Variable.set("fits", "x" * 4990)
        assert kernelflow.sql("SELECT name FROM variables")["name"].tolist() == ["fits"]

    def test_queryable_with_sql(self):
        Variable.set("config", {"retries": 3}, tags=["a", "b"])
        frame = kernelflow.sql(
            "SELECT name, value ->> 'retries' AS retries, tags, updated >= created AS ok "
            "FROM variables"
        )
        (row,) = frame.to_dict("records")
        assert (row["name"], row["retries"], list(row["tags"]), row["ok"]) == (
            "config",
            "3",
            ["a", "b"],
            True,
        )

    def test_async_variants(self):
        async def main() -> tuple:
            created = await Variable.aset("async_var", [1], overwrite=True)
            value = await Variable.aget("async_var")
            return created.value, value, await Variable.aunset("async_var")

        assert asyncio.run(main()) == ([1], [1], True)

    def test_used_inside_flows_and_tasks(self):
        @task
        def bump() -> int:
            value = Variable.get("counter", default=0) + 1
            Variable.set("counter", value, overwrite=True)
            return value

        @flow
        def twice() -> list[int]:
            return [bump(), bump()]

        assert twice() == [1, 2]
        assert Variable.get("counter") == 2


class TestVariableAcrossProcesses:
    def test_a_write_is_read_at_once_by_another_process_and_back(self, run_python):
        Variable.set("from_parent", {"n": 1})
        proc = run_python(
            """
            import json
            from kernelflow.variables import Variable
            print(json.dumps(Variable.get("from_parent")))
            Variable.set("from_child", "hello")
            """
        )
        assert json.loads(proc.stdout) == {"n": 1}
        # No compaction, no waiting: the child's write is in the database already.
        assert Variable.get("from_child") == "hello"

    def test_of_two_processes_creating_one_name_exactly_one_wins(self, child_env, tmp_path):
        script = tmp_path / "racer.py"
        script.write_text(
            "import sys\n"
            "from kernelflow.variables import Variable\n"
            "try:\n"
            "    Variable.set('winner', sys.argv[1])\n"
            "    print('won')\n"
            "except ValueError:\n"
            "    print('lost')\n"
        )
        racers = [
            subprocess.Popen(
                [sys.executable, str(script), name],
                stdout=subprocess.PIPE,
                text=True,
                env=child_env,
            )
            for name in ("first", "second")
        ]
        outcomes = [racer.communicate(timeout=60)[0].strip() for racer in racers]
        assert sorted(outcomes) == ["lost", "won"]
        winner = ("first", "second")[outcomes.index("won")]
        assert Variable.get("winner") == winner

    def test_variables_survive_a_store_repair(self):
        from kernelflow.store.repair import repair

        Variable.set("kept", {"across": "repair"})
        report = repair(force=True)
        assert report.copied.get("variables") == 1
        assert Variable.get("kept") == {"across": "repair"}


SECRET = "sk-live-4242-hunter2"


class TestSecret:
    def test_save_load_get(self):
        block_id = Secret(value=SECRET).save("api-key")
        assert isinstance(block_id, uuid.UUID)
        loaded = Secret.load("api-key")
        assert loaded.get() == SECRET
        assert loaded.value.get_secret_value() == SECRET
        assert Secret.load("secret/api-key").get() == SECRET, "Prefect's slug form"

    def test_never_shown(self):
        secret = Secret(value=SECRET)
        assert repr(secret) == str(secret) == f"{secret}" == "Secret(value='**********')"
        assert repr(secret.value) == "SecretValue('**********')" and str(secret.value) == "*" * 10
        assert SECRET not in repr(Secret(value={"password": SECRET}))

    def test_an_existing_name_needs_overwrite_and_keeps_its_id(self):
        first = Secret(value="one").save("token")
        with pytest.raises(ValueError, match=r"already exists.*overwrite=True"):
            Secret(value="two").save("token")
        assert Secret.load("token").get() == "one"
        assert Secret(value="two").save("token", overwrite=True) == first
        assert Secret.load("token").get() == "two"

    def test_a_loaded_secret_saves_under_its_name(self):
        Secret(value="old").save("reused")
        loaded = Secret.load("reused")
        loaded.value = SecretValue("new")
        loaded.save(overwrite=True)
        assert Secret.load("reused").get() == "new"
        with pytest.raises(ValueError, match="without a name"):
            Secret(value="x").save()

    def test_json_values_and_prefects_parsing_of_json_strings(self):
        Secret(value={"user": "etl", "password": SECRET}).save("creds")
        assert Secret.load("creds").get() == {"user": "etl", "password": SECRET}
        assert Secret(value='{"a": 1}').get() == {"a": 1}
        assert Secret(value="123").get() == 123
        assert Secret(value="plain text").get() == "plain text"
        with pytest.raises(ValueError, match="not a set"):
            Secret(value={SECRET}).save("not-json")
        assert not (paths().secrets / "not-json.json").exists()

    def test_missing_names_and_bad_names(self):
        with pytest.raises(ValueError, match="Unable to find block document named nope"):
            Secret.load("nope")
        with pytest.raises(ValueError, match="lowercase letters, numbers, and dashes"):
            Secret(value="x").save("Under_Score")
        with pytest.raises(ValueError, match="Unable to find"):
            Secret.delete("nope")

    def test_delete(self):
        Secret(value="x").save("short-lived")
        Secret.delete("short-lived")
        with pytest.raises(ValueError, match="Unable to find"):
            Secret.load("short-lived")

    def test_async_variants(self):
        async def main() -> object:
            await Secret(value="a").asave("async-secret")
            loaded = await Secret.aload("async-secret")
            await Secret.adelete("async-secret")
            return loaded.get()

        assert asyncio.run(main()) == "a"

    def test_stored_in_a_private_file(self):
        Secret(value=SECRET).save("private")
        directory = paths().secrets
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(directory / "private.json").st_mode) == 0o600
        assert [p.name for p in directory.iterdir()] == ["private.json"], "no temporary left"

    def test_saved_where_the_file_system_has_no_hard_links(self, monkeypatch):
        import errno

        def no_link(*_args: object) -> None:
            raise OSError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
        Secret(value="x").save("no-links")
        with pytest.raises(ValueError, match="already exists"):
            Secret(value="y").save("no-links")
        assert Secret.load("no-links").get() == "x"
        assert stat.S_IMODE(os.stat(paths().secrets / "no-links.json").st_mode) == 0o600
        assert [p.name for p in paths().secrets.iterdir()] == ["no-links.json"]

    def test_loaded_by_another_process(self, run_python):
        Secret(value=SECRET).save("shared")
        proc = run_python(
            """
            from kernelflow.blocks.system import Secret
            secret = Secret.load("shared")
            print(secret)
            print(secret.get() == "sk-live-4242-hunter2")
            """
        )
        assert proc.stdout.split() == ["Secret(value='**********')", "True"]

    def test_never_in_sql_journals_logs_or_runs_show(self, caplog):
        Secret(value=SECRET).save("db-password")

        @task
        def connect(password: Secret) -> int:
            get_run_logger().info("connecting with %s", password)
            print(password)
            return len(password.get())

        @flow(log_prints=True)
        def uses_secret(password: Secret) -> int:
            return connect(password)

        state = uses_secret(Secret.load("db-password"), return_state=True)
        assert state.result() == len(SECRET)
        # The journals hold every event of this test (parameters, logs), as text.
        journals = "".join(p.read_text() for p in paths().journal_dir.glob("*.jsonl"))
        assert "**********" in journals and SECRET not in journals

        # Every table and view a query can read, every column as text.
        tables = kernelflow.sql(
            "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' "
            "UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
        )["table_name"].tolist()
        assert {"variables", "artifacts", "events", "logs"} <= set(tables)
        assert "secrets" not in tables
        for table in tables:
            text = kernelflow.sql(f"SELECT * FROM {table}").to_json(date_format="iso")
            assert SECRET not in text, table

        result = CliRunner().invoke(main, ["runs", "show", state.run_id])
        assert result.exit_code == 0, result.output
        assert "**********" in result.output and SECRET not in result.output
        assert SECRET not in caplog.text
