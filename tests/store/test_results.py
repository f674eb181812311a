"""Tests of kernelflow.results: content-addressed files that round-trip exactly."""

from __future__ import annotations

import datetime as dt
import mmap
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
import xxhash

from kernelflow.errors import ResultMissingError, ResultSerializationError
from kernelflow.results import ResultRecord, read_result, write_result
from kernelflow.settings import use_home
from kernelflow.store import result_files, result_formats
from kernelflow.store import results as store_results

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def home(tmp_path: Path):
    previous = use_home(tmp_path)
    yield tmp_path
    use_home(previous)


def round_trip(value: object) -> tuple[object, ResultRecord]:
    record = write_result(value)
    return read_result(record.path, record.checksum), record


def assert_identical(back: pd.DataFrame, frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(
        back, frame, check_exact=True, check_index_type=True, check_column_type=True,
        check_categorical=True, check_freq=True, check_flags=True,
    )  # fmt: skip
    assert back.attrs == frame.attrs


def with_attrs(frame: pd.DataFrame) -> pd.DataFrame:
    frame.attrs["source"] = "sensor-3"
    return frame


ARROW_FRAMES = {
    "numbers": pd.DataFrame({"f": [1.5, np.nan], "i": [1, 2], "u": np.array([1, 2], np.uint8)}),
    "text": pd.DataFrame({"s": ["a", None], "o": pd.Series(["x", "y"], dtype=object)}),
    "int labels": pd.DataFrame({1: [1.0], 2: [2.0]}),
    "float labels": pd.DataFrame([[1]], columns=[1.5]),
    "range labels": pd.DataFrame(np.zeros((2, 3))),
    "object labels": pd.DataFrame([[1]], columns=pd.Index(["a"], dtype=object)),
    "categorical": pd.DataFrame(
        {
            "c": pd.Categorical(["b", "a", "b"], categories=["b", "a", "z"], ordered=True),
            "n": pd.Categorical([1, 2, 1]),
        }
    ),
    "named index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["r", "s"], name="row")),
    "object index": pd.DataFrame({"a": [1]}, index=pd.Index(["r"], dtype=object)),
    "odd range index": pd.DataFrame({"a": range(3)}, index=pd.RangeIndex(5, 11, 2)),
    "date_range index": pd.DataFrame({"a": range(3)}, index=pd.date_range("2024", periods=3)),
    "timedelta index": pd.DataFrame(
        {"a": range(3)}, index=pd.timedelta_range(0, periods=3, freq="h")
    ),
    "multi index": pd.DataFrame(
        {"a": [1, 2]}, index=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)], names=["x", "y"])
    ),
    "multi labels": pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])),
    "times": pd.DataFrame(
        {
            "naive": pd.to_datetime(["2024-01-01 00:00:00.000000001"]),
            "us": pd.to_datetime(["2024-01-01"]).as_unit("us"),
            "tz": pd.date_range("2024", periods=1, tz="Europe/Paris"),
            "delta": pd.to_timedelta([5], unit="s"),
            "period": pd.period_range("2024", periods=1, freq="M"),
        }
    ),
    "nullable": pd.DataFrame(
        {
            "i": pd.array([1, None], dtype="Int64"),
            "b": pd.array([True, None], dtype="boolean"),
            "s": pd.array(["a", None], dtype="string"),
        }
    ),
    "intervals": pd.DataFrame({"i": pd.interval_range(0, 2)}),
    "bytes": pd.DataFrame({"b": pd.Series([b"\x00", b"\xff"], dtype=object)}),
    "empty": pd.DataFrame(),
    "no rows": pd.DataFrame({"a": pd.Series([], dtype="float64")}),
    "attrs": with_attrs(pd.DataFrame({"a": [1]})),
}

PICKLED_FRAMES = {
    "mixed object column": pd.DataFrame({"o": pd.Series([1, "a", None], dtype=object)}),
    "text with missing in object column": pd.DataFrame(
        {"o": pd.Series(["a", None, np.nan], dtype=object)}
    ),
    "duplicate labels": pd.DataFrame([[1, 2]], columns=["a", "a"]),
    "mixed labels": pd.DataFrame([[1, 2]], columns=[1, "1"]),
    "complex": pd.DataFrame({"c": [1 + 2j]}),
    "python string storage": pd.DataFrame({"s": pd.array(["a"], dtype="string[python]")}),
}


def array_backing(array: np.ndarray) -> object:
    """The object that owns an array's memory (a memory map, for a zero-copy load)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array.obj if isinstance(array, memoryview) else array


def big_frame() -> pd.DataFrame:
    return pd.DataFrame({f"c{i}": np.arange(100_000, dtype=float) + i for i in range(4)})


class TestPandas:
    @pytest.mark.parametrize("name", [*ARROW_FRAMES, *PICKLED_FRAMES])
    def test_round_trips_through_its_own_pickle(self, name: str) -> None:
        frame = {**ARROW_FRAMES, **PICKLED_FRAMES}[name]
        back, record = round_trip(frame)
        assert record.format == "pickle"
        assert_identical(back, frame)

    def test_big_frame_is_mapped_and_comes_back_writable(self, home: Path) -> None:
        frame = big_frame()
        back, record = round_trip(frame)
        assert record.format == "pickle-buffers" and record.path.endswith(".pkb")
        assert record.size > result_files._MAP_THRESHOLD
        assert_identical(back, frame)
        # The columns are views of a private map of the file: no copy was made...
        assert all(isinstance(array_backing(b.values), mmap.mmap) for b in back._mgr.blocks)
        back.iloc[0, 0] = -1.0  # ...and they are writable (fails on read-only views)
        back["c1"] += 1
        assert back.iloc[0, 0] == -1.0
        # Writes stay in this process's copy: the file is unchanged.
        assert xxhash.xxh3_128_hexdigest((home / record.path).read_bytes()) == record.checksum
        assert_identical(read_result(record.path, record.checksum), frame)

    def test_big_frame_of_every_kind_of_column(self) -> None:
        n = 300_000
        frame = pd.DataFrame(
            {
                "f": np.linspace(0, 1, n),
                "s": pd.Series(["a", None, "a longer string"] * (n // 3)),
                "o": pd.Series(["x", "y", "z"] * (n // 3), dtype=object),
                "c": pd.Categorical(["b", "a", "b"] * (n // 3), categories=["b", "a", "z"]),
                "i": pd.array([1, None, 3] * (n // 3), dtype="Int64"),
                "t": pd.date_range("2024", periods=n, freq="s", tz="Europe/Paris"),
            },
            index=pd.RangeIndex(n, 3 * n, 2, name="row"),
        )
        frame.attrs["source"] = "sensor-3"
        back, record = round_trip(frame)
        assert record.format == "pickle-buffers"
        assert_identical(back, frame)

    def test_big_series_is_mapped(self) -> None:
        series = pd.Series(np.arange(200_000, dtype=np.int64), name="s")
        back, record = round_trip(series)
        assert record.format == "pickle-buffers"
        pd.testing.assert_series_equal(back, series, check_exact=True)
        back.iloc[0] = -1


class TestPandasAsTable:
    """``PANDAS_FORMAT = "table"``: frames go through Arrow, for other tools to read."""

    @pytest.fixture(autouse=True)
    def as_table(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(store_results, "PANDAS_FORMAT", "table")

    @pytest.mark.parametrize("name", list(ARROW_FRAMES))
    def test_round_trips_through_arrow(self, name: str) -> None:
        frame = ARROW_FRAMES[name]
        back, record = round_trip(frame)
        assert record.format == "arrow"
        assert_identical(back, frame)

    @pytest.mark.parametrize("name", list(PICKLED_FRAMES))
    def test_what_arrow_would_change_is_pickled(self, name: str) -> None:
        frame = PICKLED_FRAMES[name]
        back, record = round_trip(frame)
        assert record.format == "pickle"
        assert_identical(back, frame)

    def test_big_frame_is_mapped_and_comes_back_writable(self) -> None:
        frame = big_frame()
        back, record = round_trip(frame)
        assert record.format == "arrow" and record.size > result_files._MAP_THRESHOLD
        assert_identical(back, frame)
        back.iloc[0, 0] = -1.0  # fails if the columns were read-only views of the file
        back["c1"] += 1
        assert back.iloc[0, 0] == -1.0

    def test_parquet_round_trips_too(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(store_results, "TABLE_FORMAT", "parquet")
        for name in ("numbers", "multi index", "date_range index", "text", "attrs"):
            back, record = round_trip(ARROW_FRAMES[name])
            assert record.format == "parquet" and record.path.endswith(".parquet")
            assert_identical(back, ARROW_FRAMES[name])
        # Parquet decodes a categorical of integers to integers: caught, and pickled.
        back, record = round_trip(ARROW_FRAMES["categorical"])
        assert record.format == "pickle"
        assert_identical(back, ARROW_FRAMES["categorical"])


class TestOtherValues:
    def test_polars_comes_back_as_polars(self) -> None:
        frame = pl.DataFrame(
            {
                "s": ["a", None, "a much longer string than twelve bytes"],
                "i": [1, None, 3],
                "cat": pl.Series(["x", "y", "x"], dtype=pl.Categorical),
                "enum": pl.Series(["lo", "hi", "lo"], dtype=pl.Enum(["lo", "hi"])),
                "t": [dt.datetime(2024, 1, 1)] * 3,
                "list": [[1], [2, 3], []],
                "struct": [{"a": 1}, {"a": 2}, {"a": None}],
            }
        )
        back, record = round_trip(frame)
        assert record.format == "arrow"
        assert isinstance(back, pl.DataFrame)
        assert back.schema == frame.schema and back.equals(frame)

    def test_pyarrow_comes_back_as_pyarrow_with_its_metadata(self) -> None:
        table = pa.table({"a": [1, None], "b": ["x", "y"]}).replace_schema_metadata({"k": "v"})
        back, record = round_trip(table)
        assert record.format == "arrow"
        assert isinstance(back, pa.Table)
        assert back.equals(table, check_metadata=True)

    @pytest.mark.parametrize(
        "value",
        [None, 42, "text", {"a": [1, 2.5], "b": {3}}, np.arange(5), pd.Series([1, 2], name="s")],
        ids=["none", "int", "str", "dict", "ndarray", "series"],
    )
    def test_everything_else_is_pickled(self, value: object) -> None:
        back, record = round_trip(value)
        assert record.format == "pickle" and record.path.endswith(".pkl")
        if isinstance(value, (np.ndarray, pd.Series)):
            assert type(back) is type(value) and (back == value).all()
        else:
            assert back == value

    def test_big_arrays_are_mapped_out_of_band(self) -> None:
        value = {"array": np.arange(300_000), "text": "x" * 10, "frozen": np.zeros(200_000)}
        value["frozen"].flags.writeable = False
        back, record = round_trip(value)
        assert record.format == "pickle-buffers" and record.size > result_files._MAP_THRESHOLD
        assert (back["array"] == value["array"]).all() and back["text"] == value["text"]
        assert isinstance(array_backing(back["array"]), mmap.mmap)
        back["array"][0] = -1  # a private, writable copy
        assert not back["frozen"].flags.writeable  # read-only as it was written

    def test_big_pickle_without_buffers_is_read_through_a_map(self) -> None:
        value = list(range(300_000))
        back, record = round_trip(value)
        assert record.format == "pickle" and record.size > result_files._MAP_THRESHOLD
        assert back == value

    def test_small_buffers_stay_in_band(self) -> None:
        back, record = round_trip(np.arange(1000))
        assert record.format == "pickle"
        assert (back == np.arange(1000)).all()
        back[0] = -1

    def test_functions_defined_here_are_pickled_by_value(self) -> None:
        back, _ = round_trip(lambda x: x * 3)
        assert back(2) == 6


class TestFiles:
    def test_record_describes_the_file(self, home: Path) -> None:
        record = write_result([1, 2, 3])
        file = home / record.path
        data = file.read_bytes()
        assert record.path == f"results/{record.checksum[:2]}/{record.checksum}.pkl"
        assert record.checksum == xxhash.xxh3_128_hexdigest(data)
        assert record.size == len(data)

    def test_identical_content_is_written_once(self, home: Path) -> None:
        frame = pd.DataFrame({"a": [1.0, 2.0]})
        first = write_result(frame)
        inode = os.stat(home / first.path).st_ino
        second = write_result(frame.copy())
        assert first == second
        assert os.stat(home / first.path).st_ino == inode
        assert write_result({"k": 1}) == write_result({"k": 1})

    @pytest.mark.parametrize("value", ["small value", pd.DataFrame({"a": [1.0, 2.0]})])
    def test_damaged_copy_is_replaced_by_a_new_write(self, home: Path, value: object) -> None:
        record = write_result(value)
        file = home / record.path
        file.write_bytes(b"garbage" + file.read_bytes()[7:])
        assert write_result(value) == record
        assert xxhash.xxh3_128_hexdigest(file.read_bytes()) == record.checksum

    def test_no_temporary_files_are_left(self, home: Path) -> None:
        write_result({"k": 1})
        write_result(pd.DataFrame({"a": [1]}))
        with pytest.raises(ResultSerializationError):
            write_result(threading.Lock())
        assert not [p for p in (home / "results").rglob("*") if p.name.startswith(".tmp")]

    def test_unpicklable_value_names_the_task(self) -> None:
        with pytest.raises(ResultSerializationError) as caught:
            write_result({"lock": threading.Lock()}, task_name="load")
        assert str(caught.value) == (
            "Cannot persist the result of task 'load' (TypeError: cannot pickle "
            "'_thread.lock' object): return something picklable, or set persist_result=False "
            "(for a cached task, also drop its cache_policy / cache_key_fn)."
        )

    @pytest.mark.parametrize(
        "where",
        [
            "{outside}/value.pkl",  # absolute
            "results/../../outside/value.pkl",
            "results/ab/../../../outside/value.pkl",
            "../outside/value.pkl",
            "cache/value.pkl",  # in the store, but not a result
            "results",
            "results//value.pkl",
            "./results/value.pkl",
        ],
    )
    def test_paths_outside_results_are_refused(self, home: Path, where: str) -> None:
        # A valid pickle with the right checksum, outside results/: never read.
        outside = home.parent / "outside"
        outside.mkdir(exist_ok=True)
        data = pickle.dumps("planted")
        checksum = xxhash.xxh3_128_hexdigest(data)
        for folder in (outside, home / "cache"):
            folder.mkdir(exist_ok=True)
            (folder / "value.pkl").write_bytes(data)
        path = where.format(outside=outside)
        with pytest.raises(ResultMissingError) as caught:
            read_result(path, checksum)
        assert str(caught.value) == (
            f"The result path {path!r} is not inside the store's results/ folder; refusing "
            "to read it (rerun the task to recompute the result)."
        )

    def test_a_symbolic_link_in_results_is_not_followed(self, home: Path) -> None:
        record = write_result("genuine")
        planted = home / "planted.pkl"
        planted.write_bytes(pickle.dumps("planted"))
        checksum = xxhash.xxh3_128_hexdigest(planted.read_bytes())
        link = home / "results" / checksum[:2] / f"{checksum}.pkl"
        link.parent.mkdir(exist_ok=True)
        link.symlink_to(planted)
        path = link.relative_to(home).as_posix()
        with pytest.raises(ResultMissingError, match="unreadable"):
            read_result(path, checksum)
        assert read_result(record.path, record.checksum) == "genuine"

    def test_missing_file(self, home: Path) -> None:
        record = write_result("value")
        (home / record.path).unlink()
        with pytest.raises(ResultMissingError, match=f"{record.path} is missing"):
            read_result(record.path, record.checksum)

    @pytest.mark.parametrize(
        "value",
        ["small value", pd.DataFrame({"a": np.arange(200_000.0)}), pl.DataFrame({"a": range(9)})],
        ids=["pickle", "pickle-buffers", "arrow"],
    )
    def test_corrupt_file_is_refused_before_loading(self, home: Path, value: object) -> None:
        record = write_result(value)
        file = home / record.path
        data = bytearray(file.read_bytes())
        data[len(data) // 2] ^= 0xFF
        file.write_bytes(bytes(data))
        with pytest.raises(ResultMissingError, match=f"{record.path} is corrupt") as caught:
            read_result(record.path, record.checksum)
        assert "\n" not in str(caught.value)

    @pytest.mark.parametrize("keep", [-10, 0], ids=["cut short", "emptied"])
    @pytest.mark.parametrize(
        "value", [pd.DataFrame({"a": [1, 2]}), big_frame()], ids=["pickle", "pickle-buffers"]
    )
    def test_truncated_file_is_refused(self, home: Path, value: object, keep: int) -> None:
        record = write_result(value)
        file = home / record.path
        file.write_bytes(file.read_bytes()[:keep])
        with pytest.raises(ResultMissingError, match="corrupt"):
            read_result(record.path, record.checksum)

    def test_inconsistent_buffer_layout_is_refused(self, home: Path) -> None:
        # Right checksum, wrong content: a buffer said to lie past the end of the file.
        record = write_result(big_frame())
        file = home / record.path
        data = bytearray(file.read_bytes())
        entry, head = result_formats._BUFFER_ENTRY, result_formats._BUFFERS_HEAD
        _, size = entry.unpack_from(data, head.size)
        entry.pack_into(data, head.size, len(data), size)
        checksum = xxhash.xxh3_128_hexdigest(bytes(data))
        bad = f"results/{checksum[:2]}/{checksum}.pkb"
        (home / bad).parent.mkdir(exist_ok=True)
        (home / bad).write_bytes(bytes(data))
        with pytest.raises(ResultMissingError, match=f"Cannot load the result file {bad}"):
            read_result(bad, checksum)


def test_importing_results_imports_no_heavy_library() -> None:
    code = (
        "import sys, kernelflow.results\n"
        "print(sorted(m for m in ('cloudpickle', 'pandas', 'pyarrow', 'numpy', 'polars')"
        " if m in sys.modules))\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


class TestAFullDisk:
    """No space for a result or a cache entry: one StoreFullError line, nothing half-written."""

    @staticmethod
    def full(code: int = 28):  # ENOSPC
        def refuse(*args, **kwargs):
            raise OSError(code, os.strerror(code))

        return refuse

    def test_a_result(self, home, monkeypatch):
        import errno

        from kernelflow.errors import StoreFullError

        monkeypatch.setattr(result_formats, "open", self.full(), raising=False)
        with pytest.raises(StoreFullError) as caught:
            write_result({"rows": list(range(100))}, task_name="load")
        message = str(caught.value)
        assert "\n" not in message and "the result of task 'load'" in message
        assert "No space left on device" in message and "free disk space" in message
        assert caught.value.errno == errno.ENOSPC
        assert not [p for p in (home / "results").rglob("*") if p.is_file()]  # no temporary

    def test_a_cache_entry(self, home, monkeypatch):
        import errno

        from kernelflow.errors import StoreFullError
        from kernelflow.store import cache_index

        monkeypatch.setattr(cache_index, "write_private", self.full(errno.EDQUOT))
        with pytest.raises(StoreFullError, match="the cache entry of task 'load'"):
            cache_index.store("k", 1, task_name="load", expires=None, task_run_id=None, duration=0)

    def test_other_errors_are_left_alone(self, home, monkeypatch):
        monkeypatch.setattr(result_formats, "open", self.full(13), raising=False)  # EACCES
        with pytest.raises(PermissionError):
            write_result({"rows": 1})

    def test_a_task_that_persists_its_result_stops_with_the_one_line(self, home, monkeypatch):
        from kernelflow import task
        from kernelflow.errors import StoreFullError

        @task(persist_result=True, cache_policy=None)
        def load() -> dict:
            return {"rows": 3}

        monkeypatch.setattr(result_formats, "open", self.full(), raising=False)
        with pytest.raises(StoreFullError, match=r"^Cannot write the result of task 'load'"):
            load()


def test_the_format_knobs_set_through_kernelflow_results_reach_the_store():
    """``kernelflow.results.PANDAS_FORMAT = "table"`` (the documented spelling) still works."""
    import kernelflow.results as public

    before = (store_results.PANDAS_FORMAT, store_results.TABLE_FORMAT)
    try:
        public.PANDAS_FORMAT = "table"
        public.TABLE_FORMAT = "parquet"
        assert (store_results.PANDAS_FORMAT, store_results.TABLE_FORMAT) == ("table", "parquet")
        assert (public.PANDAS_FORMAT, public.TABLE_FORMAT) == ("table", "parquet")
    finally:
        store_results.PANDAS_FORMAT, store_results.TABLE_FORMAT = before
