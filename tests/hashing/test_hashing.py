"""Tests of kernelflow.hashing: stable across processes, distinct for distinct values."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections import OrderedDict, namedtuple
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from kernelflow.errors import HashingError
from kernelflow.hashing import hash_bytes, hash_value, source_hash

REPO = Path(__file__).resolve().parents[2]

# Built the same way in this process and in the subprocesses below.
VALUES_SOURCE = """
import datetime as dt, decimal, enum, uuid
import numpy as np, pandas as pd, polars as pl, pyarrow as pa

class Color(enum.Enum):
    RED = 1

values = {
    "dict": {"b": [1, 2.5, None], "a": {"x", "y", "z"}, 3: b"bytes"},
    "set": {"alpha", "beta", "gamma", "delta", "epsilon"},
    "frozenset": frozenset({"p", "q", ("r", 1)}),
    "str": "héllo wörld",
    "datetime": dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc),
    "decimal": decimal.Decimal("1.10"),
    "uuid": uuid.UUID(int=7),
    "enum": Color.RED,
    "ndarray": np.arange(24, dtype=np.float32).reshape(4, 6),
    "object_array": np.array(["a", 1, None], dtype=object),
    "dataframe": pd.DataFrame(
        {"s": ["x", "y", None], "i": [1, 2, 3], "c": pd.Categorical(["u", "v", "u"])},
        index=pd.Index([10, 20, 30], name="k"),
    ),
    "object_frame": pd.DataFrame({"o": pd.Series(["a", "b"], dtype=object)}),
    "series": pd.Series([1.5, 2.5], name="s"),
    "polars": pl.DataFrame({"s": ["x", None, "z"], "f": [1.0, 2.0, 3.0]}),
    "arrow": pa.table({"a": [1, 2, None], "b": ["p", "q", "r"]}),
}
"""

SUBPROCESS_SCRIPT = (
    VALUES_SOURCE
    + """
import json
from kernelflow.hashing import hash_value
print(json.dumps({name: hash_value(value) for name, value in values.items()}))
"""
)


def run_python(code: str, **env: str) -> str:
    environment = {**os.environ, "PYTHONPATH": str(REPO), **env}
    done = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return done.stdout


class TestStability:
    def test_same_hashes_in_processes_with_different_hash_seeds(self) -> None:
        first = json.loads(run_python(SUBPROCESS_SCRIPT, PYTHONHASHSEED="1"))
        second = json.loads(run_python(SUBPROCESS_SCRIPT, PYTHONHASHSEED="2"))
        namespace: dict = {"__name__": "__main__"}  # as in the subprocesses
        exec(VALUES_SOURCE, namespace)
        here = {name: hash_value(value) for name, value in namespace["values"].items()}
        assert first == second == here

    def test_digests_of_plain_values_are_pinned(self) -> None:
        # Cache entries are keyed on these: a change here makes every one of them miss.
        # (Digests of the encoding before generic objects were hashed structurally.)
        import http

        assert hash_value({"b": [1, 2.5, None], "a": {"x", "y"}, 3: b"bytes"}) == (
            "3c65dc59d6f9a4ca3ca08061a3f80572"
        )
        assert hash_value((1, "a", 2**70, -1.5, True)) == "36bcbe350c8ef4bc40504bb38cf1ac24"
        assert hash_value(np.arange(6, dtype=np.int64).reshape(2, 3)) == (
            "0940fc653529a8d38a30eddad6f78d42"
        )
        assert hash_value(http.HTTPStatus.OK) == "69a9e572cc4f508817bdf2e4a5727b30"

    def test_dict_and_set_order_do_not_matter(self) -> None:
        assert hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
        assert hash_value({3, 1, 2}) == hash_value({2, 3, 1})

    def test_digest_is_32_hex_digits(self) -> None:
        digest = hash_value([1, "a"])
        assert len(digest) == 32 and int(digest, 16) >= 0

    def test_equal_values_built_differently_hash_alike(self) -> None:
        strided = np.arange(20.0)[::2]
        assert hash_value(strided) == hash_value(np.ascontiguousarray(strided))
        assert hash_value(float("nan")) == hash_value(-float("nan"))
        sliced = pa.array(["a", "bb", None, "ccc"]).slice(1, 2)
        assert hash_value(sliced) == hash_value(pa.array(["bb", None]))
        frame = pd.DataFrame({"a": [1.0, 2.0], "b": [3, 4]})
        assert hash_value(frame) == hash_value(frame.copy())


class TestDistinct:
    @pytest.mark.parametrize(
        ("left", "right"),
        [
            (1, True),
            (1, 1.0),
            (1, "1"),
            ("1", b"1"),
            (b"1", bytearray(b"1")),
            (("ab", "c"), ("a", "bc")),
            ([1, 2], (1, 2)),
            ({1, 2}, frozenset({1, 2})),
            ({"a": 1}, {"a": 2}),
            ({"a": 1}, {"b": 1}),
            ((1, 2), namedtuple("Point", "x y")(1, 2)),
            ({"a": 1}, OrderedDict(a=1)),
            (None, "None"),
            (2**100, 2**100 + 1),
            (-1, 255),
            (1 + 2j, 2 + 1j),
            (dt.date(2024, 1, 1), dt.datetime(2024, 1, 1)),
            (dt.timedelta(seconds=1), dt.timedelta(microseconds=1)),
            (decimal.Decimal("1.1"), decimal.Decimal("1.2")),
            (uuid.UUID(int=1), uuid.UUID(int=2)),
            (Path("a/b"), "a/b"),
            (Path("a/b"), PurePosixPath("a/b/c")),
        ],
    )
    def test_builtins(self, left: object, right: object) -> None:
        assert hash_value(left) != hash_value(right)

    def test_timezones_with_one_offset(self) -> None:
        from zoneinfo import ZoneInfo

        paris = dt.datetime(2024, 1, 1, 12, tzinfo=ZoneInfo("Europe/Paris"))
        fixed = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1)))
        assert hash_value(paris) != hash_value(fixed)

    def test_enums_and_dataclasses(self) -> None:
        class Mode(enum.Enum):
            A = 1
            B = 2

        @dataclasses.dataclass
        class Config:
            rate: float
            tags: set[str]

        assert hash_value(Mode.A) != hash_value(Mode.B)
        assert hash_value(Mode.A) != hash_value(1)
        assert hash_value(Config(0.1, {"a"})) == hash_value(Config(0.1, {"a"}))
        assert hash_value(Config(0.1, {"a"})) != hash_value(Config(0.2, {"a"}))

    @pytest.mark.parametrize(
        "other",
        [
            pytest.param(lambda f: f.assign(b=[3.0, 4.5]), id="one cell"),
            pytest.param(lambda f: f.set_axis([0, 2]), id="index"),
            pytest.param(lambda f: f.astype({"b": "float32"}), id="dtype"),
            pytest.param(lambda f: f.rename(columns={"b": "c"}), id="column name"),
            pytest.param(lambda f: f.rename_axis("k"), id="index name"),
            pytest.param(lambda f: f[["b", "a", "s"]], id="column order"),
            pytest.param(lambda f: f.assign(s=["x", "z"]), id="text cell"),
        ],
    )
    def test_dataframes(self, other) -> None:
        frame = pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0], "s": ["x", "y"]})
        assert hash_value(frame) != hash_value(other(frame))

    def test_label_types(self) -> None:
        assert hash_value(pd.DataFrame({1: [1]})) != hash_value(pd.DataFrame({"1": [1]}))

    def test_pandas_columns_of_every_kind(self) -> None:
        def variants(column: pd.Series) -> tuple[str, str]:
            changed = column.copy()
            changed.iloc[0] = changed.iloc[1]
            return hash_value(pd.DataFrame({"c": column})), hash_value(pd.DataFrame({"c": changed}))

        columns = [
            pd.Series(["a", "b"], dtype=object),
            pd.Series(["a", "b"], dtype="string"),
            pd.Series([1, 2], dtype="Int64"),
            pd.Series(pd.date_range("2024", periods=2, tz="Europe/Paris")),
            pd.Series(pd.date_range("2024", periods=2)),
            pd.Series(pd.Categorical(["a", "b"])),
            pd.Series(pd.period_range("2024", periods=2, freq="M")),
            pd.Series([1, 2], dtype="int64[pyarrow]"),
        ]
        for column in columns:
            original, changed = variants(column)
            assert original != changed, column.dtype

    def test_object_columns_keep_types_apart(self) -> None:
        def frame(*items: object) -> pd.DataFrame:
            return pd.DataFrame({"o": pd.Series(items, dtype=object)})

        assert hash_value(frame("None", "a")) != hash_value(frame(None, "a"))
        assert hash_value(frame(1, "a")) != hash_value(frame("1", "a"))
        assert hash_value(frame(None, "a")) != hash_value(frame(float("nan"), "a"))
        assert hash_value(frame("a", "b")) != hash_value(pd.DataFrame({"o": ["a", "b"]}))

    def test_categorical_order_and_categories(self) -> None:
        plain = pd.Series(pd.Categorical(["a", "b"]))
        ordered = pd.Series(pd.Categorical(["a", "b"], ordered=True))
        wider = pd.Series(pd.Categorical(["a", "b"], categories=["a", "b", "c"]))
        assert len({hash_value(plain), hash_value(ordered), hash_value(wider)}) == 3

    def test_pandas_scalars_keep_nanoseconds(self) -> None:
        assert hash_value(pd.Timedelta(1)) != hash_value(pd.Timedelta(0))
        moment = pd.Timestamp("2024-01-01")
        assert hash_value(moment + pd.Timedelta(1)) != hash_value(moment)
        assert hash_value(moment) != hash_value(moment.tz_localize("UTC"))
        assert hash_value(moment) != hash_value(moment.to_pydatetime())

    def test_series_and_index(self) -> None:
        assert hash_value(pd.Series([1, 2], name="a")) != hash_value(pd.Series([1, 2], name="b"))
        assert hash_value(pd.RangeIndex(3)) != hash_value(pd.Index([0, 1, 2]))
        multi = pd.MultiIndex.from_tuples([("a", 1), ("b", 2)])
        assert hash_value(multi) != hash_value(pd.MultiIndex.from_tuples([("a", 1), ("b", 3)]))

    def test_ndarrays(self) -> None:
        base = np.arange(6, dtype=np.int64)
        assert hash_value(base) != hash_value(base.astype(np.int32))
        assert hash_value(base.reshape(2, 3)) != hash_value(base.reshape(3, 2))
        assert hash_value(base) != hash_value(base.tolist())
        assert hash_value(np.array(["a", 1], dtype=object)) != hash_value(
            np.array(["a", "1"], dtype=object)
        )
        moments = np.array(["2024-01-01", "2024-01-02"], dtype="datetime64[s]")
        assert hash_value(moments) != hash_value(moments.astype("datetime64[ms]"))
        assert hash_value(np.float64(1.0)) != hash_value(1.0)
        assert hash_value(np.float64(1.0)) != hash_value(np.float32(1.0))

    def test_arrow_values(self) -> None:
        table = pa.table({"a": [1, 2], "b": ["x", "y"]})
        assert hash_value(table) != hash_value(pa.table({"a": [1, 2], "b": ["x", "z"]}))
        assert hash_value(table) != hash_value(pa.table({"a": [1, 2], "c": ["x", "y"]}))
        assert hash_value(table) != hash_value(table.to_batches()[0])
        nested = pa.array([[1, 2], [3]])
        assert hash_value(nested) != hash_value(pa.array([[1], [2, 3]]))
        assert hash_value(nested.slice(1)) == hash_value(pa.array([[3]]))
        assert hash_value(pa.array([1, None])) != hash_value(pa.array([1, 0]))
        coded = pa.array(["a", "b", "a"]).dictionary_encode()
        assert hash_value(coded) != hash_value(pa.array(["a", "b", "b"]).dictionary_encode())

    def test_polars_values(self) -> None:
        frame = pl.DataFrame({"a": [1, 2], "s": ["x", "y"]})
        assert hash_value(frame) == hash_value(pl.DataFrame({"a": [1, 2], "s": ["x", "y"]}))
        assert hash_value(frame) != hash_value(pl.DataFrame({"a": [1, 2], "s": ["x", "q"]}))
        assert hash_value(frame) != hash_value(frame.to_arrow())
        assert hash_value(pl.Series("a", [1])) != hash_value(pl.Series("b", [1]))

    def test_other_objects(self) -> None:
        # Once hashed through their pickle bytes, now through their reduced state.
        class Thing:
            def __init__(self, n: int) -> None:
                self.n = n

        assert hash_value(Thing(1)) == hash_value(Thing(1))
        assert hash_value(Thing(1)) != hash_value(Thing(2))

    def test_self_referencing_list(self) -> None:
        loop: list = [1]
        loop.append(loop)
        assert hash_value(loop) == hash_value(loop)


class TestUnhashable:
    def test_names_the_argument(self) -> None:
        with pytest.raises(HashingError) as caught:
            hash_value(sqlite3.connect(":memory:"), name="conn")
        assert str(caught.value) == (
            "Cannot hash argument 'conn' (a sqlite3.Connection) for the cache key: exclude it "
            "with cache_policy=INPUTS - 'conn', or pass a cache_key_fn."
        )

    def test_names_what_is_inside(self) -> None:
        with pytest.raises(HashingError, match=r"argument 'cfg' \(a dict holding a _thread.lock\)"):
            hash_value({"lock": threading.Lock()}, name="cfg")

    def test_without_a_name(self) -> None:
        with pytest.raises(HashingError, match=r"^Cannot hash a value \(a generator\)"):
            hash_value(x for x in [])

    def test_is_a_type_error_of_one_line(self) -> None:
        with socket.socket() as sock, pytest.raises(TypeError) as caught:
            hash_value([sock], name="sockets")
        assert "\n" not in str(caught.value)
        assert "cache_policy=INPUTS - 'sockets'" in str(caught.value)


class TestHashBytesAndSource:
    def test_parts_are_delimited(self) -> None:
        assert hash_bytes("ab", "c") != hash_bytes("a", "bc")
        assert hash_bytes("a") != hash_bytes(b"a")
        assert hash_bytes(b"x", "y") == hash_bytes(b"x", "y")

    def test_source_hash_follows_the_source(self) -> None:
        def double(x):
            return 2 * x

        def triple(x):
            return 3 * x

        assert source_hash(double) == source_hash(double)
        assert source_hash(double) != source_hash(triple)

    def test_without_source_the_code_is_hashed(self) -> None:
        namespace: dict = {}
        exec("def f(x):\n    return g(x)\ndef h(x):\n    return k(x)", namespace)
        with pytest.raises(OSError):
            __import__("inspect").getsource(namespace["f"])
        assert source_hash(namespace["f"]) != source_hash(namespace["h"])

    def test_replaced_code_is_noticed(self) -> None:
        namespace: dict = {}
        exec("def f(x):\n    return x + 1\ndef g(x):\n    return x + 2", namespace)
        f = namespace["f"]
        before = source_hash(f)
        f.__code__ = namespace["g"].__code__  # what IPython's autoreload does
        assert source_hash(f) != before

    def test_builtins(self) -> None:
        assert source_hash(len) != source_hash(print)


def test_importing_and_hashing_builtins_imports_no_data_library() -> None:
    code = (
        "import sys\n"
        "from kernelflow.hashing import hash_value\n"
        "hash_value({'a': [1, 2.5, {'x'}], 'b': (None, b'z')})\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'polars', 'cloudpickle')"
        " if m in sys.modules))\n"
    )
    assert run_python(code).strip() == "[]"


def test_the_same_rows_chunked_differently_hash_alike() -> None:
    import pandas as pd
    import pyarrow as pa

    one = pa.chunked_array([pa.array(["a", "b", "c"])])
    two = pa.chunked_array([pa.array(["a"]), pa.array(["b", "c"])])
    assert hash_value(one) == hash_value(two)
    assert hash_value(one) != hash_value(pa.chunked_array([pa.array(["a", "b", "d"])]))
    # pd.concat leaves a string index in two chunks; a pickle round trip makes it one.
    frame = pd.concat([pd.DataFrame({"x": [1.0]}), pd.DataFrame({"y": [2.0]})], axis=1)
    assert hash_value(frame) == hash_value(pickle.loads(pickle.dumps(frame)))


class TestPydanticModelSerializer:
    """A ``@model_serializer`` says what a model is: keys hash its output, as Prefect's do."""

    @staticmethod
    def models():
        import pydantic

        class Holder(pydantic.BaseModel):
            model_config = pydantic.ConfigDict(arbitrary_types_allowed=True)
            name: str
            lock: object

        class Polite(Holder):
            @pydantic.model_serializer
            def only_the_name(self) -> dict:
                return {"name": self.name}

        return Holder, Polite

    def test_fields_the_serializer_leaves_out_do_not_count(self):
        _, Polite = self.models()
        first = Polite(name="a", lock=threading.Lock())
        second = Polite(name="a", lock=threading.Lock())
        assert hash_value(first) == hash_value(second)
        assert hash_value(first) != hash_value(Polite(name="b", lock=threading.Lock()))

    def test_a_model_without_one_is_hashed_whole(self):
        Holder, _ = self.models()
        with pytest.raises(HashingError):
            hash_value(Holder(name="a", lock=threading.Lock()), name="holder")
        assert hash_value(Holder(name="a", lock=1)) != hash_value(Holder(name="a", lock=2))

    def test_the_class_counts_not_only_the_output(self):
        import pydantic

        _, Polite = self.models()

        class Other(pydantic.BaseModel):
            name: str

            @pydantic.model_serializer
            def same_output(self) -> dict:
                return {"name": self.name}

        assert hash_value(Polite(name="a", lock=None)) != hash_value(Other(name="a"))
