"""hash_value of generic objects: one hash per logical value, in every process.

Objects that are not builtins, arrays or tables (fitted scikit-learn estimators,
matplotlib figures, instances of notebook classes, dataclasses) are hashed
through their pickle protocol, field by field. These tests pin down what that
buys: the same hash after a pickle round trip (a value restored from the
cache) and in another process with another ``PYTHONHASHSEED`` (a fresh
kernel), a different hash for a changed value, and sharing and cycles kept
apart from copies. The property tests at the end generate nested values with
hypothesis.
"""

from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import sys
import textwrap
import threading
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kernelflow.errors import HashingError
from kernelflow.hashing import hash_value

REPO = Path(__file__).resolve().parents[2]


def round_trip(value: Any) -> Any:
    """What a cached value is after it is saved and loaded again."""
    return pickle.loads(cloudpickle.dumps(value))


def notebook(source: str) -> dict[str, Any]:
    """Run ``source`` as a notebook cell runs: in a namespace whose module is ``__main__``.

    Classes and functions defined there are pickled by value, as in a notebook.
    """
    namespace: dict[str, Any] = {"__name__": "__main__"}
    # dont_inherit: not this module's `from __future__ import annotations`, which
    # changes the compiled code (and so the hash) of what the cell defines.
    exec(compile(textwrap.dedent(source), "<cell>", "exec", dont_inherit=True), namespace)
    return namespace


def run_python(code: str, *args: str, stdin: bytes | None = None, **env: str) -> str:
    """Run ``code`` in a new interpreter of this environment, with this checkout importable."""
    environment = {**os.environ, "PYTHONPATH": str(REPO), **env}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=environment,
        input=stdin,
        capture_output=True,
        check=True,
    )
    return done.stdout.decode()


# Built alike here (in a namespace named __main__) and in the subprocesses below.
VALUES_SOURCE = """
import dataclasses
import enum
import functools
import typing
from collections import OrderedDict, defaultdict, namedtuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_iris
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

X, y = load_iris(return_X_y=True)


class Model:
    threshold = 0.5

    def __init__(self, weights):
        self.weights = weights
        self.history = []

    def predict(self, x):
        return x @ self.weights > self.threshold


@dataclasses.dataclass
class Config:
    name: str
    rate: float
    tags: set
    model: Model | None = None


class Color(enum.Enum):
    RED = 1
    BLUE = 2


def scale(x, factor=2):
    return x * factor


class Tuned(Model):  # super() puts the class in a closure cell of __init__
    def __init__(self, weights, rate):
        super().__init__(weights)
        self.rate = rate


class Tags(set):
    pass


Pair = namedtuple("Pair", "left right")


model = Model(np.arange(4.0))
model.history.append(model)  # a cycle through an attribute
shared = [1, 2, 3]
loop = {"name": "loop"}
loop["self"] = loop
fig, ax = plt.subplots()
ax.plot([1, 2, 3], [4, 1, 9], label="line")
ax.set_title("a figure")
ax.legend()
# Shared axes, a colorbar, an image and a layout pass: many transforms whose caches
# the layout fills and unpickling invalidates again.
grid, axes = plt.subplots(2, 2, sharex="col")
points = axes[0, 0].scatter([1, 2, 3], [3, 1, 2], c=[0.1, 0.5, 0.9])
grid.colorbar(points, ax=axes[0, 0])
axes[0, 1].imshow(np.arange(12.0).reshape(3, 4))
axes[1, 0].bar(["x", "y"], [1, 2])
axes[1, 1].annotate("peak", xy=(1, 2), xytext=(0, 3), arrowprops={"arrowstyle": "->"})
grid.suptitle("subplots")
grid.tight_layout()

values = {
    "StandardScaler": StandardScaler().fit(X),
    "PCA": PCA(n_components=2).fit(X),
    "Pipeline": make_pipeline(StandardScaler(), PCA(2), LogisticRegression(max_iter=500)).fit(X, y),
    "GridSearchCV": GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 1.0]}, cv=3
    ).fit(X, y),
    "RandomForestClassifier": RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y),
    "notebook object": model,
    "dataclass": Config("run", 0.1, {"alpha", "beta", "gamma"}, model),
    "shared references": {"a": shared, "b": [shared, shared], "c": (shared,)},
    "cycle": loop,
    "OrderedDict": OrderedDict([("b", 1), ("a", 2)]),
    "defaultdict": defaultdict(list, {"x": [1]}),
    "enum": Color.BLUE,
    "notebook function": scale,
    "subclass using super()": Tuned(np.ones(2), 0.1),
    "assorted": {
        "namedtuple": Pair(1, [2]),
        "set subclass": Tags({"a", "b", "c"}),
        "TypeVar": typing.TypeVar("T", bound=int),
        "partial": functools.partial(scale, factor=3),
        "bound method": model.predict,
        "class": Model,
        "builtin": len,
        "slice": slice(1, None, 2),
    },
    "figure": fig,
    "figure with subplots": grid,
}
"""

NAMES = [
    "StandardScaler",
    "PCA",
    "Pipeline",
    "GridSearchCV",
    "RandomForestClassifier",
    "notebook object",
    "dataclass",
    "shared references",
    "cycle",
    "OrderedDict",
    "defaultdict",
    "enum",
    "notebook function",
    "subclass using super()",
    "assorted",
    "figure",
    "figure with subplots",
]
# Fit times (cv_results_["mean_fit_time"], refit_time_) differ from one fit to the next:
# that value is only compared once pickled, never rebuilt.
NOT_REPRODUCIBLE = {"GridSearchCV"}

SUBPROCESS_SCRIPT = f"""
import json, pickle, sys
from kernelflow.hashing import hash_value
namespace = {{"__name__": "__main__"}}
exec({VALUES_SOURCE!r}, namespace)
with open(sys.argv[1], "rb") as file:
    loaded = pickle.load(file)
print(json.dumps({{
    "built": {{name: hash_value(value) for name, value in namespace["values"].items()}},
    "loaded": {{name: hash_value(value) for name, value in loaded.items()}},
}}))
"""


@pytest.fixture(scope="module")
def values() -> Any:
    import matplotlib.pyplot as plt

    built = notebook(VALUES_SOURCE)["values"]
    assert list(built) == NAMES
    yield built
    plt.close("all")


@pytest.fixture(autouse=True)
def _close_new_figures() -> Any:
    # Unpickling a pyplot figure registers a new one; more than 20 open warns (an error here).
    plt = sys.modules.get("matplotlib.pyplot")
    before = set(plt.get_fignums()) if plt else set()
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    for number in set(plt.get_fignums()) - before if plt else ():
        plt.close(number)


class TestRoundTrip:
    @pytest.mark.parametrize("name", NAMES)
    def test_same_hash_after_a_pickle_round_trip(self, values: dict, name: str) -> None:
        value = values[name]
        assert hash_value(value) == hash_value(round_trip(value))

    @pytest.mark.parametrize("name", NAMES)
    def test_hashing_twice_gives_one_hash(self, values: dict, name: str) -> None:
        # matplotlib's CallbackRegistry.__getstate__ advances a counter: skipped.
        assert hash_value(values[name]) == hash_value(values[name])

    def test_reading_does_not_change_the_hash(self, values: dict) -> None:
        # A partial's reduction turns from None to {} once its __dict__ is read; a
        # figure holds partials in its callback registries.
        import functools

        partial = functools.partial(max, 1)
        before = hash_value(partial)
        assert partial.__dict__ == {}
        assert hash_value(partial) == before
        figure = values["figure with subplots"]
        before = hash_value(figure)
        for axes in figure.axes:
            for axis in (axes.xaxis, axes.yaxis):
                for proxies in axis.callbacks.callbacks.values():
                    for proxy in proxies.values():
                        assert vars(proxy()) == {}  # a functools.partial
        repr(figure), figure.get_size_inches(), [axes.get_xlim() for axes in figure.axes]
        assert hash_value(figure) == before

    def test_masked_arrays(self) -> None:
        # GridSearchCV.cv_results_ holds some: their fill value is None until first read,
        # and "?" comes back from a round trip of an object array as a "<U1" array.
        for masked in (
            np.ma.masked_array([1.0, 2.0], mask=[0, 1]),
            np.ma.masked_array(["a", "b"], mask=[0, 1], dtype=object),
        ):
            assert hash_value(masked) == hash_value(round_trip(masked))
            assert masked._fill_value is None  # hashing did not store the default
        plain = np.ma.masked_array([1, 2], mask=[0, 1])
        assert hash_value(plain) != hash_value(np.ma.masked_array([1, 2], mask=[0, 0]))
        assert hash_value(plain) != hash_value(
            np.ma.masked_array([1, 2], mask=[0, 1], fill_value=7)
        )

    def test_a_deep_copy_hashes_alike(self, values: dict) -> None:
        for name in ("Pipeline", "dataclass", "notebook object", "shared references"):
            assert hash_value(copy.deepcopy(values[name])) == hash_value(values[name]), name


class TestOtherProcesses:
    def test_same_hashes_built_or_loaded_in_processes_with_other_hash_seeds(
        self, values: dict, tmp_path: Path
    ) -> None:
        here = {name: hash_value(value) for name, value in values.items()}
        path = tmp_path / "values.pickle"
        path.write_bytes(cloudpickle.dumps(values))
        reproducible = {
            name: digest for name, digest in here.items() if name not in NOT_REPRODUCIBLE
        }
        for seed in ("1", "2"):
            there = json.loads(run_python(SUBPROCESS_SCRIPT, str(path), PYTHONHASHSEED=seed))
            assert there["loaded"] == here
            assert {name: there["built"][name] for name in reproducible} == reproducible


class TestChangedValues:
    def test_refit_on_other_data(self) -> None:
        from sklearn.datasets import load_iris
        from sklearn.preprocessing import StandardScaler

        x, _ = load_iris(return_X_y=True)
        assert hash_value(StandardScaler().fit(x)) != hash_value(StandardScaler().fit(x[:100]))
        assert hash_value(StandardScaler().fit(x)) == hash_value(StandardScaler().fit(x.copy()))

    def test_other_hyper_parameter(self, values: dict) -> None:
        from sklearn.base import clone
        from sklearn.datasets import load_iris
        from sklearn.decomposition import PCA

        x, y = load_iris(return_X_y=True)
        assert hash_value(PCA(2).fit(x)) != hash_value(PCA(3).fit(x))
        assert hash_value(PCA(2)) != hash_value(PCA(2, whiten=True))  # unfitted too
        changed = clone(values["Pipeline"]).set_params(logisticregression__C=0.5).fit(x, y)
        assert hash_value(changed) != hash_value(values["Pipeline"])
        refit = clone(values["Pipeline"]).fit(x, y)
        assert hash_value(refit) == hash_value(values["Pipeline"])

    def test_one_attribute_mutated(self, values: dict) -> None:
        scaler = copy.deepcopy(values["StandardScaler"])
        before = hash_value(scaler)
        scaler.mean_[0] += 1e-12
        assert hash_value(scaler) != before
        pipeline = copy.deepcopy(values["Pipeline"])
        pipeline.steps[1][1].note = "an extra attribute"
        assert hash_value(pipeline) != hash_value(values["Pipeline"])

    def test_figure_content(self, values: dict) -> None:
        import matplotlib.pyplot as plt

        def figure(ys: list[int], title: str) -> Any:
            fig, ax = plt.subplots()
            ax.plot([1, 2, 3], ys)
            ax.set_title(title)
            return fig

        base = hash_value(figure([4, 1, 9], "t"))
        assert hash_value(figure([4, 1, 9], "t")) == base
        assert hash_value(figure([4, 1, 8], "t")) != base
        assert hash_value(figure([4, 1, 9], "u")) != base

    def test_notebook_class_redefined(self) -> None:
        source = textwrap.dedent(
            """
            class Model:
                def __init__(self, n):
                    self.n = n

                def score(self, x):
                    return x * self.n
            model = Model(3)
            """
        )

        def model(source: str) -> str:
            return hash_value(notebook(source)["model"])

        assert model(source) == model(source)  # the same code run again: the same hash
        assert model(source.replace("x * self.n", "x + self.n")) != model(source)
        assert model(source.replace("(self, x)", "(self, x=1)")) != model(source)
        assert model(source.replace("class Model:", "class Model:\n    unit = 'kg'")) != (
            model(source)
        )
        assert model(source.replace("Model(3)", "Model(4)")) != model(source)
        # Comments and layout are not code.
        assert model(source.replace("self.n = n", "self.n = n  # keep")) == model(source)

    def test_notebook_function_and_what_it_reads(self) -> None:
        source = """
            OFFSET = 1
            def shift(x):
                return x + OFFSET
            pipeline = {"steps": [shift]}
        """
        base = hash_value(notebook(source)["pipeline"])
        assert hash_value(notebook(source)["pipeline"]) == base
        assert hash_value(notebook(source.replace("OFFSET = 1", "OFFSET = 2"))["pipeline"]) != base
        assert hash_value(notebook(source.replace("x + OFFSET", "x - OFFSET"))["pipeline"]) != base

    def test_closures_and_local_classes(self) -> None:
        def make(n: int) -> Any:
            class Scaled:
                def value(self) -> int:
                    return n

            return Scaled()

        assert hash_value(make(1)) != hash_value(make(2))
        assert hash_value(make(1)) == hash_value(make(1))
        assert hash_value(lambda *a: a) != hash_value(lambda **a: a)
        assert hash_value(lambda a, /: a) != hash_value(lambda a: a)

    def test_ordered_dict_order_counts_and_dict_order_does_not(self) -> None:
        assert hash_value(OrderedDict(a=1, b=2)) != hash_value(OrderedDict(b=2, a=1))
        assert hash_value({"a": 1, "b": 2}) == hash_value({"b": 2, "a": 1})
        assert hash_value(defaultdict(int, a=1, b=2)) == hash_value(defaultdict(int, b=2, a=1))
        assert hash_value(defaultdict(int, a=1)) != hash_value(defaultdict(list, a=1))
        assert hash_value(OrderedDict(a=1)) != hash_value({"a": 1})


class TestSharing:
    """Two references to one object are not two equal objects: restoring must keep that."""

    def test_one_list_twice_or_two_equal_lists(self) -> None:
        a = [1, 2]
        assert hash_value([a, a]) != hash_value([a, copy.copy(a)])
        assert hash_value([a, a]) == hash_value(round_trip([a, a]))
        assert hash_value([a, copy.copy(a)]) == hash_value(round_trip([a, copy.copy(a)]))

    def test_in_dict_values_attributes_and_arrays(self) -> None:
        a = [1]
        assert hash_value({"x": a, "y": a}) != hash_value({"x": a, "y": [1]})
        array = np.arange(3)
        assert hash_value([array, array]) != hash_value([array, array.copy()])
        frame = pd.DataFrame({"a": [1, 2]})
        assert hash_value((frame, frame)) != hash_value((frame, frame.copy()))
        holder = notebook(
            "class Holder:\n    def __init__(self, a, b):\n        self.a, self.b = a, b"
        )
        holder_class = holder["Holder"]
        assert hash_value(holder_class(a, a)) != hash_value(holder_class(a, [1]))

    def test_between_set_elements_and_dict_keys(self) -> None:
        node = notebook("class Node:\n    def __init__(self, child):\n        self.child = child")
        node_class = node["Node"]
        child = [1]
        shared = {node_class(child), node_class(child)}
        copied = {node_class(child), node_class([1])}
        assert hash_value(shared) != hash_value(copied)
        assert hash_value(shared) == hash_value(round_trip(shared))
        key = node_class(child)
        assert hash_value({key: child}) != hash_value({key: [1]})
        assert hash_value({key: child}) == hash_value(round_trip({key: child}))

    def test_dict_keyed_by_plain_objects(self) -> None:
        # Hashed in insertion order (equal only to a dict of the very same keys).
        node = notebook("class Node:\n    def __init__(self, n):\n        self.n = n")["Node"]
        a, b = node(1), node(2)
        assert hash_value({a: "x", b: "y"}) == hash_value(round_trip({a: "x", b: "y"}))
        assert hash_value({a: "x", b: "y"}) != hash_value({a: "y", b: "x"})
        assert hash_value({a: "x"}) != hash_value({node(1): "y"})

    def test_cycles(self) -> None:
        loop: list = [1]
        loop.append(loop)
        assert hash_value(loop) == hash_value(round_trip(loop))
        assert hash_value(loop) != hash_value([1, [1]])
        pair = notebook(
            "class Pair:\n    def __init__(self):\n        self.other = None\n"
            "a, b = Pair(), Pair()\na.other, b.other = b, a"
        )
        assert hash_value(pair["a"]) == hash_value(round_trip(pair["a"]))


class TestDepth:
    def test_nesting_deeper_than_the_walk_falls_back_to_the_pickle(self) -> None:
        link = notebook("class Link:\n    def __init__(self, next):\n        self.next = next")
        chain = None
        for _ in range(300):  # the walk takes about 250; cloudpickle, about 400
            chain = link["Link"](chain)
        assert hash_value(chain) == hash_value(chain)
        nested: list = []
        for _ in range(400):  # lists take one frame a level: walked, not pickled
            nested = [nested]
        assert hash_value(nested) == hash_value(round_trip(nested))


class TestUnhashable:
    def test_a_lock_inside_an_object_is_named(self) -> None:
        holder = notebook("class Holder:\n    pass")["Holder"]()
        holder.lock = threading.Lock()
        with pytest.raises(
            HashingError, match=r"argument 'h' \(a __main__.Holder holding a _thread.lock\)"
        ):
            hash_value(holder, name="h")

    def test_a_generator_in_a_dataclass(self) -> None:
        box = notebook("import dataclasses\n@dataclasses.dataclass\nclass Box:\n    item: object")
        with pytest.raises(HashingError, match=r"holding a generator"):
            hash_value(box["Box"](x for x in []))


# --- property tests ---------------------------------------------------------------------

# A dataclass as a notebook defines it: pickled by value, so a subprocess can load it.
Point = notebook(
    """
    import dataclasses
    @dataclasses.dataclass
    class Point:
        x: object
        y: object
    """
)["Point"]

hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
arrays = hnp.arrays(
    dtype=st.sampled_from(
        [np.dtype(d) for d in ("int8", "int64", "float32", "float64", "bool", "<U3", "M8[s]")]
    ),
    shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
)
frames = st.integers(0, 4).flatmap(
    lambda rows: st.dictionaries(
        st.sampled_from(["a", "b", "c"]),
        st.lists(st.integers(-5, 5), min_size=rows, max_size=rows)
        | st.lists(st.floats(allow_nan=False), min_size=rows, max_size=rows)
        | st.lists(st.text(max_size=3), min_size=rows, max_size=rows),
        max_size=3,
    ).map(lambda columns: pd.DataFrame(columns, index=pd.RangeIndex(rows)))
)


def _nested(inner: st.SearchStrategy) -> st.SearchStrategy:
    return (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.lists(st.tuples(st.text(max_size=3), inner), max_size=4).map(OrderedDict)
        | st.builds(Point, inner, inner)
    )


nested_values = st.recursive(hashable_leaves | arrays | frames, _nested, max_leaves=12)

PROPERTY_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def same(left: Any, right: Any) -> bool:
    """Structural equality, strict about types, with NaN equal to NaN.

    Where this says two values differ, their hashes must differ.
    """
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, np.ndarray):
        return (
            left.dtype == right.dtype
            and left.shape == right.shape
            and np.array_equal(left, right, equal_nan=left.dtype.kind in "fcmM")
        )
    if isinstance(left, pd.DataFrame):
        return (
            list(left.columns) == list(right.columns)
            and list(left.dtypes) == list(right.dtypes)
            and left.index.equals(right.index)
            and left.equals(right)
        )
    if isinstance(left, (list, tuple)):
        return len(left) == len(right) and all(map(same, left, right))
    if isinstance(left, OrderedDict):
        return same(list(left.items()), list(right.items()))
    if isinstance(left, dict):  # NaN keys are not == to each other: match them by hand
        return len(left) == len(right) and all(
            any(same(key, other) and same(item, right[other]) for other in right)
            for key, item in left.items()
        )
    if isinstance(left, (set, frozenset)):
        return len(left) == len(right) and all(any(same(a, b) for b in right) for a in left)
    if isinstance(left, Point):
        return same(left.x, right.x) and same(left.y, right.y)
    return left == right


@st.composite
def changed(draw: Any, value: Any) -> Any:
    """A copy of ``value`` with one thing changed: a leaf, a key, an element, a type."""
    if isinstance(value, Point):
        if draw(st.booleans()):
            return Point(draw(changed(value.x)), value.y)
        return Point(value.x, draw(changed(value.y)))
    if isinstance(value, (list, tuple)) and value and draw(st.booleans()):
        position = draw(st.integers(0, len(value) - 1))
        items = list(value)
        items[position] = draw(changed(items[position]))
        return type(value)(items)
    if isinstance(value, list):
        return [*value, draw(nested_values)] if draw(st.booleans()) else tuple(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict) and value and draw(st.booleans()):
        key = draw(st.sampled_from(list(value)))
        result = copy.copy(value)
        if draw(st.booleans()):
            result[key] = draw(changed(value[key]))
        else:
            del result[key]
        return result
    if isinstance(value, OrderedDict) and len(value) > 1:
        return OrderedDict(reversed(value.items()))
    if isinstance(value, dict):
        return {**value, draw(hashables): draw(nested_values)}
    if isinstance(value, (set, frozenset)):
        return frozenset(value) if isinstance(value, set) else set(value) | {draw(hashables)}
    if isinstance(value, np.ndarray):
        if value.size and draw(st.booleans()):
            result = value.copy()
            result.flat[0] = result.flat[-1] if value.size > 1 else result.flat[0]
            return result
        return value.reshape(-1, 1) if value.ndim == 1 else value.ravel()
    if isinstance(value, pd.DataFrame):
        if len(value.columns) and len(value):
            return value.iloc[::-1].reset_index(drop=True)
        return value.assign(extra=0)
    return draw(hashable_leaves | arrays)


class TestProperties:
    @PROPERTY_SETTINGS
    @given(nested_values)
    def test_same_hash_after_a_pickle_round_trip(self, value: Any) -> None:
        assert hash_value(value) == hash_value(round_trip(value))

    @PROPERTY_SETTINGS
    @given(st.data())
    def test_a_changed_value_hashes_differently(self, data: st.DataObject) -> None:
        value = data.draw(nested_values, label="value")
        other = data.draw(changed(value), label="changed")
        if not same(value, other):
            assert hash_value(value) != hash_value(other)

    @PROPERTY_SETTINGS
    @given(nested_values, nested_values)
    def test_equal_hashes_mean_equal_values(self, left: Any, right: Any) -> None:
        if hash_value(left) == hash_value(right):
            assert same(left, right)

    @PROPERTY_SETTINGS
    @given(
        st.lists(nested_values, max_size=3) | st.dictionaries(st.text(max_size=2), nested_values)
    )
    def test_one_object_twice_is_not_two_copies(self, value: Any) -> None:
        assert hash_value([value, value]) != hash_value([value, copy.deepcopy(value)])

    @settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(nested_values, min_size=20, max_size=40))
    def test_same_hashes_in_another_process(self, batch: list[Any]) -> None:
        script = (
            "import json, pickle, sys\n"
            "from kernelflow.hashing import hash_value\n"
            "batch = pickle.loads(sys.stdin.buffer.read())\n"
            "print(json.dumps([hash_value(value) for value in batch]))\n"
        )
        there = json.loads(run_python(script, stdin=cloudpickle.dumps(batch), PYTHONHASHSEED="3"))
        assert there == [hash_value(value) for value in batch]


def test_a_restored_scikit_learn_bunch_hashes_as_the_original() -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    assert hash_value(digits) == hash_value(pickle.loads(cloudpickle.dumps(digits)))


def test_a_colormap_hashes_alike_before_and_after_its_first_use() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import colormaps

    colormap = colormaps["coolwarm"].copy()  # a fresh one: its lookup table is not built
    before = hash_value(colormap)
    colormap(0.5)  # builds the table
    assert hash_value(colormap) == before
    assert hash_value(colormap.with_extremes(bad="red")) != before
