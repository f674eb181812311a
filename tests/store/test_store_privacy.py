"""A private store: folders 0700 and files 0600 whatever the umask; unsafe homes refused.

Whoever can write the store could plant results kernelflow loads; whoever can
read it sees parameters, logs, results and command lines.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

import kernelflow
from kernelflow.errors import StoreError, StoreNotPrivateError
from kernelflow.settings import StorePaths, open_private, use_home, write_private
from kernelflow.store.db import connect

#: Uses every part of the store that writes files, in a fresh process with a given umask.
EVERY_WRITER = """
import os
os.umask(int(os.environ["UMASK"], 8))

import nbformat
import pyarrow as pa
import kernelflow
from kernelflow import flow, task
from kernelflow.concurrency import create_limit
from kernelflow.concurrency.sync import concurrency, rate_limit
from kernelflow.deployments import deploy
from kernelflow.deployments.html_copy import html_copy
from kernelflow.settings import paths
from kernelflow.store.compact import compact

@task(cache_key_fn=lambda *args, **kwargs: "square-3")
def square(x):
    return x * x

@task(persist_result=True)
def table():
    return pa.table({"a": list(range(10))})

@flow
def pipeline():
    return square(3), table()

pipeline()
assert pipeline()[0] == 9

create_limit("db", 2)
create_limit("api", 5, slot_decay_per_second=1.0)
with concurrency("db"):
    rate_limit("api")

notebook = nbformat.v4.new_notebook()
notebook.cells.append(nbformat.v4.new_code_cell("x = 1"))
notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
nbformat.write(notebook, "report.ipynb")
deploy("report.ipynb", "report", kernel="python3")
# A deployment run's output notebook (as the runner makes it private), and its HTML copy.
outputs = paths().outputs / "report"
paths().ensure(outputs)
nbformat.write(notebook, outputs / "run.ipynb")
os.chmod(outputs / "run.ipynb", 0o600)
html_copy(outputs / "run.ipynb")  # made as when first asked for: run.html

compact()
states = kernelflow.sql("SELECT state_name FROM task_runs")["state_name"]
print(",".join(sorted(states)))
"""


def modes(home: Path) -> dict[str, str]:
    """Relative path -> octal mode of the home and everything in it."""
    found = {".": f"{stat.S_IMODE(home.stat().st_mode):o}"}
    for path in sorted(home.rglob("*")):
        found[str(path.relative_to(home))] = f"{stat.S_IMODE(path.lstat().st_mode):o}"
    return found


class TestModes:
    @pytest.mark.parametrize("umask", ["000", "022"])
    def test_every_folder_is_0700_and_every_file_0600(self, run_python, tmp_path, umask):
        home = tmp_path / "nested" / "home"
        done = run_python(
            EVERY_WRITER,
            UMASK=umask,
            KERNELFLOW_HOME=str(home),
            KERNELFLOW_COMPACT_AT_EXIT="inline",
        )
        assert done.stdout.split()[-1] == "Cached,Completed,Completed,Completed"
        found = modes(home)
        # Every kind of file the store writes is there...
        names = " ".join(found)
        for part in (
            "kernelflow.duckdb", "kernelflow.duckdb.lock", "kernelflow.key", "journal/",
            "results/", "cache/", "limits/db/limit.json", "limits/db/slot-",
            "limits/api/", "deployments/report/", "outputs/report/run.html",
        ):  # fmt: skip
            assert part in names, part
        # ...and private.
        wrong = {
            name: mode
            for name, mode in found.items()
            if mode != ("700" if (home / name).is_dir() else "600")
        }
        assert wrong == {}
        # Parents of the home are not the store's: made as mkdir -p makes them.
        parent = stat.S_IMODE((tmp_path / "nested").stat().st_mode)
        assert parent == 0o777 & ~int(umask, 8)

    def test_the_write_ahead_log_is_private_while_it_exists(self, tmp_path):
        paths = StorePaths(tmp_path / "home")
        previous = os.umask(0)
        try:
            with connect(paths) as con:
                con.execute("INSERT INTO schema_version VALUES (0, now())")
                wal = Path(f"{paths.database}.wal")
                assert stat.S_IMODE(wal.stat().st_mode) == 0o600
                assert stat.S_IMODE(paths.database.stat().st_mode) == 0o600
        finally:
            os.umask(previous)

    def test_helpers_ignore_the_umask(self, tmp_path):
        previous = os.umask(0o277)  # even one that takes the owner's own bits
        try:
            StorePaths(tmp_path / "home").ensure(tmp_path / "home" / "a" / "b")
            write_private(tmp_path / "home" / "a" / "written", b"data")
            os.close(open_private(tmp_path / "home" / "a" / "opened", os.O_WRONLY))
        finally:
            os.umask(previous)
        assert modes(tmp_path / "home") == {
            ".": "700",
            "a": "700",
            "a/b": "700",
            "a/opened": "600",
            "a/written": "600",
        }

    def test_write_private_leaves_no_temporary_file_behind(self, tmp_path):
        write_private(tmp_path / "file", b"one")
        write_private(tmp_path / "file", b"two")
        assert [p.name for p in tmp_path.iterdir()] == ["file"]
        assert (tmp_path / "file").read_bytes() == b"two"

    def test_an_older_stores_files_are_made_private_when_opened(self, tmp_path):
        paths = StorePaths(tmp_path / "home")
        paths.ensure()
        paths.lock.write_bytes(b"")
        paths.lock.chmod(0o644)
        with connect(paths):
            pass
        assert stat.S_IMODE(paths.lock.stat().st_mode) == 0o600


class TestTemporaryFiles:
    def test_a_deployment_snapshot_ignores_a_planted_fixed_name(self, tmp_path):
        import hashlib

        import nbformat

        from kernelflow.deployments import deploy

        notebook = nbformat.v4.new_notebook()
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        source = tmp_path / "report.ipynb"
        nbformat.write(notebook, source)
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        folder = kernelflow.settings.paths().home / "deployments" / "report"
        folder.mkdir(parents=True)
        victim = tmp_path / "victim.txt"
        victim.write_text("untouched")
        # The name the snapshot used to be written through, planted in advance.
        (folder / f"{digest[:16]}.partial").symlink_to(victim)

        deploy(str(source), "report", kernel="python3")

        assert victim.read_text() == "untouched"
        snapshot = folder / f"{digest[:16]}.ipynb"
        assert snapshot.read_bytes() == source.read_bytes() and not snapshot.is_symlink()
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o600
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            [f"{digest[:16]}.partial", snapshot.name]
        )


@pytest.fixture
def home(tmp_path):
    """An existing store home, active for this process."""
    folder = tmp_path / "home"
    folder.mkdir(mode=0o700)
    previous = use_home(folder)
    yield folder
    use_home(previous)


class TestRefusedHomes:
    @pytest.mark.parametrize(
        ("mode", "whom"),
        [(0o777, "its group and every user"), (0o770, "its group"), (0o703, "every user")],
    )
    def test_a_home_others_can_write(self, home, mode, whom):
        home.chmod(mode)
        for use in (self.record, self.query, self.cache):
            with pytest.raises(StoreNotPrivateError) as caught:
                use()
            message = str(caught.value)
            assert message == (
                f"The store directory {home} can be written by {whom} (mode {mode:o}), who "
                f"could plant results kernelflow would load; make it private with "
                f"`chmod 700 {home}`."
            )
            assert isinstance(caught.value, StoreError)
        home.chmod(0o700)  # doing what the message says is enough
        self.record()

    def test_a_home_of_another_user(self, home):
        os.chown(home, 65534, 65534)  # tests run as root; 65534 is "nobody"
        for use in (self.record, self.query, self.cache):
            with pytest.raises(StoreNotPrivateError, match="belongs to another user") as caught:
                use()
            assert "(uid 65534)" in str(caught.value) and "KERNELFLOW_HOME" in str(caught.value)
            assert "\n" not in str(caught.value)

    def test_a_readable_home_is_used_as_it_is(self, home):
        home.chmod(0o755)  # e.g. made by an older kernelflow: nobody else can write it
        self.record()
        assert stat.S_IMODE(home.stat().st_mode) == 0o755

    def test_a_key_others_can_read(self, home):
        self.cache()
        key = home / "kernelflow.key"
        key.chmod(0o644)
        from kernelflow.store import signing

        signing._keys.clear()  # as a new process would
        with pytest.raises(StoreNotPrivateError, match=f"`chmod 600 {key}`"):
            self.cache()

    @staticmethod
    def record():
        @kernelflow.flow
        def recorded():
            return 1

        assert recorded() == 1

    @staticmethod
    def query():
        kernelflow.sql("SELECT 1")

    @staticmethod
    def cache():
        from kernelflow.store import cache_index, signing

        signing._keys.clear()
        cache_index.lookup("k")
        cache_index.store("k", 1, task_name="t", expires=None, task_run_id=None, duration=0.0)


def test_the_helpers_are_importable_without_heavy_libraries(run_python):
    done = run_python(
        """
        import sys
        import kernelflow.settings, kernelflow.store.signing
        print(sorted(m for m in ("duckdb", "pandas", "pyarrow") if m in sys.modules))
        """
    )
    assert done.stdout.strip() == "[]"
