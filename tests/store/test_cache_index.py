"""Tests of kernelflow.store.cache_index: one file per key, verified results, journal events."""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import xxhash

from kernelflow.settings import paths, use_home
from kernelflow.store import cache_index, signing
from kernelflow.store.cache_index import CacheEntry, CacheHit, clear, delete, entries, lookup, store


@pytest.fixture(autouse=True)
def home(tmp_path: Path):
    previous = use_home(tmp_path)
    yield tmp_path
    use_home(previous)


def events(home: Path, kind: str) -> list[dict]:
    found = []
    for file in sorted((home / "journal").glob("*.jsonl")):
        for line in file.read_text().splitlines():
            event = json.loads(line)
            if event.get("ev") == kind:
                found.append(event)
    return found


def put(key: str, value: object = "value", **options: object) -> CacheEntry:
    settings = {"task_name": "load", "expires": None, "task_run_id": "run-1", "duration": 2.5}
    return store(key, value, **{**settings, **options})


def index_file(home: Path, key: str) -> Path:
    return home / "cache" / key[:2] / f"{key}.json"


def write_signed(file: Path, stored: dict) -> None:
    """Rewrite an index file with changed fields, signed as kernelflow signs them."""
    fields = {name: value for name, value in stored.items() if name != "mac"}
    mac = signing.sign(paths(), cache_index._PURPOSE, cache_index._signed_bytes(fields))
    file.write_text(json.dumps({**fields, "mac": mac}))


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "kernelflow.cache"]


class TestStoreAndLookup:
    def test_hit_returns_the_value_and_entry(self, home: Path) -> None:
        entry = put("abc123", {"rows": [1, 2]})
        hit = lookup("abc123", task_run_id="run-2")
        assert isinstance(hit, CacheHit)
        assert hit.value == {"rows": [1, 2]}
        assert hit.entry == entry
        assert entry.task_name == "load" and entry.duration == 2.5 and entry.format == "pickle"
        assert (home / entry.result).is_file()

    def test_index_file_holds_the_entry(self, home: Path) -> None:
        entry = put("abc123")
        stored = json.loads(index_file(home, "abc123").read_text())
        signature = stored.pop("mac")  # HMAC-SHA256 with the store's key
        assert len(signature) == 64 and int(signature, 16) >= 0
        assert stored == {
            "key": "abc123",
            "task_name": "load",
            "result": entry.result,
            "checksum": entry.checksum,
            "size": entry.size,
            "format": "pickle",
            "created": entry.created,
            "expires": None,
            "task_run_id": "run-1",
            "duration": 2.5,
        }

    def test_absent_key_is_a_miss(self) -> None:
        assert lookup("nothing-here") is None

    def test_dataframe_round_trips(self) -> None:
        frame = pd.DataFrame({"a": [1.5, 2.5]}, index=pd.Index(["x", "y"], name="k"))
        put("frame-key", frame)
        hit = lookup("frame-key")
        assert hit is not None and hit.entry.format == "pickle"
        pd.testing.assert_frame_equal(hit.value, frame)

    def test_store_replaces_an_entry(self) -> None:
        put("abc123", 1)
        put("abc123", 2)
        hit = lookup("abc123")
        assert hit is not None and hit.value == 2

    def test_any_string_is_a_key(self, home: Path) -> None:
        key = "../../etc/passwd weird:key/" + "x" * 300
        put(key, "safe")
        hit = lookup(key)
        assert hit is not None and hit.value == "safe" and hit.entry.key == key
        files = list((home / "cache").rglob("*.json"))
        assert len(files) == 1 and (home / "cache") in files[0].parents

    def test_hit_event_can_be_handed_to_the_caller(self, home: Path) -> None:
        put("abc123")
        held: list[dict] = []
        assert lookup("abc123", task_run_id="run-2", events=held) is not None
        assert [(e["ev"], e["key"], e["task_run_id"]) for e in held] == [
            ("cache_hit", "abc123", "run-2")
        ]
        assert events(home, "cache_hit") == []  # the caller journals it

    def test_a_changed_index_file_is_read_again(self, home: Path) -> None:
        put("abc123", 1)
        assert lookup("abc123").value == 1  # remembered...
        put("abc123", 2)
        assert lookup("abc123").value == 2  # ...only for the same bytes

    def test_events_are_journaled(self, home: Path) -> None:
        entry = put("abc123")
        lookup("abc123", task_run_id="run-2")
        (write,) = events(home, "cache_write")
        assert write == {
            "ev": "cache_write",
            "key": "abc123",
            "task_name": "load",
            "result": entry.result,
            "checksum": entry.checksum,
            "size": entry.size,
            "created": entry.created,
            "expires": None,
            "task_run_id": "run-1",
            "duration": 2.5,
        }
        (hit,) = events(home, "cache_hit")
        assert hit["key"] == "abc123" and hit["task_run_id"] == "run-2" and hit["t"] > 0


class TestExpiration:
    def test_expired_entry_is_a_miss(self) -> None:
        put("old", expires=time.time() - 1)
        assert lookup("old") is None

    def test_future_expiry_is_a_hit(self) -> None:
        put("fresh", expires=time.time() + 3600)
        assert lookup("fresh") is not None

    def test_is_expired(self) -> None:
        entry = put("fresh", expires=100.0)
        assert entry.is_expired(now=100.0) and not entry.is_expired(now=99.0)


class TestCorruption:
    def test_corrupt_result_is_a_miss_with_one_warning(
        self, home: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        entry = put("abc123", list(range(100)))
        result = home / entry.result
        result.write_bytes(result.read_bytes()[:-3] + b"xyz")
        with caplog.at_level(logging.WARNING, logger="kernelflow.cache"):
            assert lookup("abc123") is None
        assert cache_warnings(caplog) == [
            f"Cached result for task 'load' is corrupt (file {entry.result}); recomputing."
        ]
        assert not index_file(home, "abc123").exists()
        assert [e["key"] for e in events(home, "cache_delete")] == ["abc123"]
        assert lookup("abc123") is None  # and nothing more is logged
        assert len(cache_warnings(caplog)) == 1

    def test_recomputed_value_repairs_the_damaged_file(self, home: Path) -> None:
        entry = put("abc123", {"value": 1})
        result = home / entry.result
        result.write_bytes(b"garbage" + result.read_bytes()[7:])
        assert lookup("abc123") is None
        put("abc123", {"value": 1})  # what the engine does after recomputing
        hit = lookup("abc123")
        assert hit is not None and hit.value == {"value": 1}

    def test_missing_result_is_a_miss(self, home: Path, caplog: pytest.LogCaptureFixture) -> None:
        entry = put("abc123")
        (home / entry.result).unlink()
        with caplog.at_level(logging.WARNING, logger="kernelflow.cache"):
            assert lookup("abc123") is None
        assert cache_warnings(caplog) == [
            f"Cached result for task 'load' is missing (file {entry.result}); recomputing."
        ]

    @pytest.mark.parametrize(
        "content",
        [b"{not json", b"[1, 2]", b'{"key": "abc123"}', b"", b"\xff\xfe"],
        ids=["bad json", "a list", "fields missing", "empty", "not utf-8"],
    )
    def test_corrupt_index_file_is_a_miss(
        self, home: Path, caplog: pytest.LogCaptureFixture, content: bytes
    ) -> None:
        put("abc123")
        index_file(home, "abc123").write_bytes(content)
        with caplog.at_level(logging.WARNING, logger="kernelflow.cache"):
            assert lookup("abc123") is None
        assert cache_warnings(caplog) == [
            "Cache entry for key 'abc123' is corrupt (file cache/ab/abc123.json); recomputing."
        ]
        assert not index_file(home, "abc123").exists()

    def test_index_file_corrupted_after_a_hit_is_a_miss(
        self, home: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        put("abc123")
        assert lookup("abc123") is not None
        file = index_file(home, "abc123")
        raw = file.read_bytes()
        file.write_bytes(raw.replace(b'"key"', b'"kex"'))  # same size, same second
        with caplog.at_level(logging.WARNING, logger="kernelflow.cache"):
            assert lookup("abc123") is None
        assert len(cache_warnings(caplog)) == 1

    def test_mistyped_index_file_is_a_miss(
        self, home: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        put("abc123")
        file = index_file(home, "abc123")
        file.write_text(json.dumps({**json.loads(file.read_text()), "expires": "tomorrow"}))
        with caplog.at_level(logging.WARNING, logger="kernelflow.cache"):
            assert lookup("abc123") is None
        assert len(cache_warnings(caplog)) == 1

    def test_entries_skip_corrupt_files(self, home: Path) -> None:
        put("good")
        put("bad")
        index_file(home, "bad").write_bytes(b"{")
        assert [e.key for e in entries()] == ["good"]


class TestDeleteAndClear:
    def test_delete(self, home: Path) -> None:
        entry = put("abc123")
        assert delete("abc123") is True
        assert delete("abc123") is False
        assert lookup("abc123") is None
        assert (home / entry.result).exists()  # results may be shared; only the key goes
        assert [e["key"] for e in events(home, "cache_delete")] == ["abc123"]

    def test_clear_by_task(self, home: Path) -> None:
        put("k1", task_name="a")
        put("k2", task_name="b")
        put("k3", task_name="a")
        assert clear(task_name="a") == 2
        assert [e.key for e in entries()] == ["k2"]
        assert sorted(e["key"] for e in events(home, "cache_delete")) == ["k1", "k3"]

    def test_clear_older_than(self, home: Path) -> None:
        for key, age in (("old", 7200), ("new", 10)):
            put(key)
            file = index_file(home, key)
            stored = json.loads(file.read_text())
            stored["created"] = time.time() - age
            write_signed(file, stored)
        assert clear(older_than=3600) == 1
        assert [e.key for e in entries()] == ["new"]

    def test_clear_everything(self) -> None:
        for key in ("k1", "k2", "k3"):
            put(key)
        assert clear() == 3
        assert entries() == []

    def test_entries_are_oldest_first(self) -> None:
        put("first")
        put("second")
        assert [e.key for e in entries()] == ["first", "second"]


class _Plant:
    """Loading its pickle creates a file: proof that a planted result was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def plant(home: Path, key: str, marker: Path, **fields: object) -> Path:
    """Write what an attacker would: a pickle in results/ and a well-formed entry for it."""
    data = pickle.dumps(_Plant(marker))
    checksum = xxhash.xxh3_128_hexdigest(data)
    result = home / "results" / checksum[:2] / f"{checksum}.pkl"
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_bytes(data)
    entry = {
        "key": key,
        "task_name": "load",
        "result": result.relative_to(home).as_posix(),
        "checksum": checksum,
        "size": len(data),
        "format": "pickle",
        "created": time.time(),
        "expires": None,
        "task_run_id": None,
        "duration": 1.0,
        **fields,
    }
    file = index_file(home, key)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(entry))
    return file


class TestSignatures:
    UNSIGNED = (
        "Cache entry for key {key!r} is not signed with this store's key (file {file}), so "
        "kernelflow did not write it; its result is not loaded; recomputing."
    )

    def assert_refused(
        self, home: Path, key: str, marker: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="kernelflow.cache"):
            assert lookup(key) is None
            assert lookup(key) is None  # removed: one warning, not one per lookup
        file = index_file(home, key).relative_to(home)
        assert cache_warnings(caplog) == [self.UNSIGNED.format(key=key, file=file)]
        assert not marker.exists()  # never unpickled
        assert not index_file(home, key).exists()

    def test_a_planted_entry_without_signature_is_a_miss(self, home, tmp_path, caplog):
        put("other")  # the store has a key
        marker = tmp_path / "pwned"
        plant(home, "abc123", marker)
        self.assert_refused(home, "abc123", marker, caplog)

    def test_a_planted_entry_with_a_made_up_signature_is_a_miss(self, home, tmp_path, caplog):
        put("other")
        marker = tmp_path / "pwned"
        plant(home, "abc123", marker, mac="0" * 64)
        self.assert_refused(home, "abc123", marker, caplog)

    def test_a_signature_does_not_move_to_another_result(self, home, tmp_path, caplog):
        genuine = json.loads(index_file(home, put("abc123").key).read_text())
        marker = tmp_path / "pwned"
        planted = json.loads(plant(home, "abc123", marker).read_text())
        # The genuine entry's signature on the planted result's fields.
        index_file(home, "abc123").write_text(json.dumps({**planted, "mac": genuine["mac"]}))
        self.assert_refused(home, "abc123", marker, caplog)

    def test_an_entry_signed_by_another_store_is_a_miss(self, home, tmp_path, caplog):
        put("abc123")
        signed_elsewhere = index_file(home, "abc123").read_bytes()
        (home / "kernelflow.key").unlink()  # as if this store were another one
        signing._keys.clear()
        put("other")  # a new key
        index_file(home, "abc123").write_bytes(signed_elsewhere)
        self.assert_refused(home, "abc123", tmp_path / "no-marker", caplog)

    def test_the_key_is_private_and_made_with_the_first_entry(self, home):
        assert not (home / "kernelflow.key").exists()
        assert lookup("abc123") is None  # a lookup makes no key
        assert not (home / "kernelflow.key").exists()
        put("abc123")
        key = home / "kernelflow.key"
        assert key.stat().st_size == signing.KEY_BYTES
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert sorted(p.name for p in home.iterdir() if p.name.startswith(".")) == []

    def test_processes_racing_to_make_the_key_agree_on_one(self, home):
        code = (
            "import sys\n"
            "from kernelflow.store.cache_index import store\n"
            "store(sys.argv[1], sys.argv[1], task_name='t', expires=None, task_run_id=None,"
            " duration=0.0)\n"
        )
        environment = {
            **os.environ,
            "KERNELFLOW_HOME": str(home),
            "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        }
        workers = [
            subprocess.Popen([sys.executable, "-c", code, f"k{i}"], env=environment)
            for i in range(4)
        ]
        assert [worker.wait(60) for worker in workers] == [0] * 4
        assert [lookup(f"k{i}").value for i in range(4)] == ["k0", "k1", "k2", "k3"]

    def test_a_planted_result_is_computed_again_by_a_cached_task(self, home, tmp_path):
        from kernelflow import task

        calls = []

        @task(cache_key_fn=lambda *args, **kwargs: "always-the-same")
        def load() -> str:
            calls.append(1)
            return "computed"

        assert load(return_state=True).name == "Completed"
        (stored,) = entries()  # the key also covers the task's identity
        marker = tmp_path / "pwned"
        plant(home, stored.key, marker, task_name="load")
        # Listen on the logger itself: whether kernelflow's console logging lets records
        # propagate to caplog depends on what ran before in this process.
        warned: list[logging.LogRecord] = []
        listener = logging.Handler(logging.WARNING)
        listener.emit = warned.append  # type: ignore[method-assign]
        cache_logger = logging.getLogger("kernelflow.cache")
        cache_logger.addHandler(listener)
        try:
            second = load(return_state=True)
        finally:
            cache_logger.removeHandler(listener)
        assert (second.name, second.result()) == ("Completed", "computed")
        assert len(calls) == 2 and not marker.exists()
        assert [r.getMessage().split(" (")[0] for r in warned] == [
            f"Cache entry for key {stored.key!r} is not signed with this store's key"
        ]
        third = load(return_state=True)  # the recomputed result was stored, signed
        assert (third.name, third.result(), len(calls)) == ("Cached", "computed", 2)


class TestJournalOfCachedTaskRuns:
    """What the engine journals around a lookup: every state, the key, the hit."""

    @staticmethod
    def run_events(home: Path, run_id: str) -> list[tuple]:
        found = []
        for file in sorted((home / "journal").glob("*.jsonl")):
            for line in file.read_text().splitlines():
                event = json.loads(line)
                if run_id in (event.get("id"), event.get("run_id"), event.get("task_run_id")):
                    key = event.get("cache_key", event.get("key"))
                    found.append((event["ev"], event.get("name"), key))
                    if event["ev"] == "task_run" and event.get("pending"):
                        # A plain Pending is implied by the creation line (see journal.py).
                        found.append(("state", "Pending", None))
        return found

    def test_miss_then_hit(self, home: Path) -> None:
        from kernelflow import flow, task
        from kernelflow.tasks import task_input_hash

        @task(cache_key_fn=task_input_hash)
        def double(x: int) -> int:
            return 2 * x

        @flow
        def twice() -> list:
            return [double(21, return_state=True), double(21, return_state=True)]

        miss, hit = twice()
        assert (miss.name, hit.name, hit.result()) == ("Completed", "Cached", 42)
        key = events(home, "inputs")[0]["cache_key"]
        assert self.run_events(home, miss.run_id) == [
            ("task_run", "double-0", None),
            ("state", "Pending", None),
            ("inputs", None, key),
            ("state", "Running", None),
            ("cache_write", None, key),
            ("state", "Completed", None),
        ]
        assert self.run_events(home, hit.run_id) == [
            ("task_run", "double-1", None),
            ("state", "Pending", None),
            ("inputs", None, key),
            ("cache_hit", None, key),
            ("state", "Cached", None),
        ]

    def test_held_events_are_journaled_when_the_run_is_interrupted(
        self, home: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from kernelflow import task
        from kernelflow.cache_policies import INPUTS
        from kernelflow.engine import task_run

        def interrupted(tags: frozenset[str]) -> None:
            raise KeyboardInterrupt

        # Between the lookup (a miss) and the first try: the inputs event is still held.
        monkeypatch.setattr(task_run, "_tag_slots", interrupted)

        @task(cache_policy=INPUTS, tags=["db"])
        def load(x: int) -> int:
            return x

        with pytest.raises(KeyboardInterrupt):
            load(1)
        (created,) = events(home, "task_run")
        journaled = self.run_events(home, created["id"])
        assert [name for ev, name, _ in journaled if ev == "state"] == ["Pending", "Cancelled"]
        assert [ev for ev, _, _ in journaled].count("inputs") == 1


def test_importing_the_index_imports_no_database_or_data_library() -> None:
    code = (
        "import sys, kernelflow.store.cache_index\n"
        "print(sorted(m for m in ('duckdb', 'cloudpickle', 'pandas', 'pyarrow', 'numpy')"
        " if m in sys.modules))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
