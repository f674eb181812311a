"""Stable, fast hashes of Python values, for cache keys.

A value is hashed by streaming a canonical, type-tagged encoding of it into one
xxh3_128 hasher. The encoding follows the value's logical content, never
addresses or pickle bytes: one value hashes alike in every process of one
environment, with any ``PYTHONHASHSEED``, and after a pickle round trip (a value
restored from the cache in a fresh kernel).

- Every piece starts with a tag naming its type and every variable-length piece
  carries its length, so different values cannot encode alike: ``1``, ``True``
  and ``1.0`` differ, and so do ``("ab", "c")`` and ``("a", "bc")``.
- Sets are ordered by the digest of each element and dicts by the digest of each
  key, never by iteration order: the order of a set of strings changes with
  ``PYTHONHASHSEED``, so it would change the key from one process to the next.
  Two exceptions, both hashed in order: dict subclasses whose ``==`` is not
  ``dict``'s (``OrderedDict``, whose equality depends on order, and any that
  override ``__eq__``: for an unknown equality, telling too much apart only
  costs a cache miss), and dicts whose keys are all objects that compare by
  identity (no ``__eq__``/``__hash__`` of their own). Such a dict equals only a
  dict of the very same key objects, which no other process holds; its
  insertion order is deterministic and pickling keeps it, and sorting would
  hash every key twice (see below).
- Arrays and tables feed their raw buffers to the hasher without copying them;
  numpy, pandas, pyarrow and polars are only touched when the value comes from
  them, so hashing a dict never imports pandas.
- **Shared references and cycles.** Each mutable object met (list, dict, set,
  bytearray, ndarray, DataFrame, Series, closure cell, any other object) is
  numbered in the order of the walk; meeting it again feeds a back-reference to
  that number instead of its content. So cycles end (a figure and its axes
  point at each other), and ``[a, a]`` hashes apart from ``[a, copy(a)]``:
  restoring a cached value must restore that sharing. Immutable values (str,
  int, float, tuple, frozenset...) are not numbered: their identity is not part
  of their value. Set elements and dict keys are first hashed one by one with
  the numbering as it stands (so none sees what a sibling numbered, whatever
  the iteration order), sorted, then numbered in sorted order; one that shares
  an object with a sibling before it is hashed again (see :func:`_sort`).
- **Other objects** are encoded through their pickle protocol, as pickle reduces
  them (cloudpickle's and ``copyreg``'s reducers, else ``__reduce_ex__(5)``):
  the callable, its arguments, the state, list items and dict items, each fed
  through this same encoding. Pickle bytes would change after a round trip
  (string interning, memo layout) and carry a per-process id for every class
  defined in a notebook.
- **Classes and functions** that can be imported by ``module.qualname`` are
  encoded by that name alone (an installed library's code is keyed by name, as
  :mod:`kernelflow.kernel.dependencies` does). Those defined in ``__main__``
  (a notebook), inside a function, or in a module registered with
  ``cloudpickle.register_pickle_by_value`` are encoded by value, as cloudpickle
  pickles them: a function by its compiled code (bytecode, names, constants,
  signature and flags; not line numbers, file names or comments), defaults,
  closure, attributes and the globals its code reads; a class by its name,
  metaclass, bases and every member. Redefining a notebook class with other code
  therefore changes the hash of its instances, and running the same cell again
  does not. Each such definition is hashed once per call, on its own, so its
  digest does not depend on where it is first met.

Pickle bytes are still hashed where there is no structure to walk: an object
whose ``__reduce__`` names a global that cannot be found by that name, an
object that cloudpickle pickles but pickle's protocol cannot reduce, a module
not in ``sys.modules``, a numpy array of a structured dtype holding objects, and
a value nested deeper than the walk's recursion allows (about 250 levels of
objects or 900 of lists): that whole value is pickled then. Such hashes may
differ from one process to the next: a cache miss, never a wrong hit.

A value that cannot be hashed raises :class:`~kernelflow.errors.HashingError`
naming the argument and the part that failed: a generator, a lock, an open
binary file, a socket, a connection, a weak reference, anything that neither
pickle's protocol nor cloudpickle can take apart.

Known limits, each of which can only cause a cache miss, never a wrong hit:

- Library versions: an object's pickled state may change with the library that
  defines it (scikit-learn stores ``_sklearn_version``). Conversely a library
  class is known by name: its instances hash alike before and after an upgrade
  that changed its code but not their state.
- A pyarrow or polars value in several chunks is combined into one before it is
  hashed (a copy), so the same rows chunked differently hash alike.
- State that depends on the process: an object whose ``__getstate__`` returns
  ``id()`` values, addresses, timestamps (a ``GridSearchCV``'s fit times),
  random tokens or a counter that pickling advances hashes differently each time
  it is built, though alike once built (and after a round trip). The known ones
  that a round trip or a new process would change are left out: see
  ``_TRANSIENT_STATE`` (matplotlib's transform caches and callback counter,
  pyplot's figure number), where others can be added.
- State an object fills in lazily (a ``functools.cached_property``, a cache
  filled on first read) is hashed once it is there: the first read changes the
  hash. (A ``functools.partial``, whose reduction changes when its ``__dict__``
  is first read, is hashed field by field instead.)
- Set elements that compare by identity and are equal in content (two
  ``Node()`` with the same fields in one set) sort in iteration order, which
  follows memory addresses; so do the items of a ``WeakSet``, and of any object
  whose reduction lists them in hash or address order.
- A notebook function's hash covers the globals its code reads, not state it
  reaches through an imported module (``config.THRESHOLD``).

The package, one job a module, each importing only those above it in this list:
:mod:`._walk` (the hasher, the numbering, sorting, routing by exact type),
:mod:`._builtins`, :mod:`._definitions` (classes and functions),
:mod:`._objects` (the pickle protocol), :mod:`._arrow` (pyarrow, polars),
:mod:`._arrays` (numpy, pandas), :mod:`._routes` (the encoder of any other
type) and :mod:`._api` (the public functions).
"""

from __future__ import annotations

from kernelflow.hashing._api import hash_bytes, hash_value, source_hash

__all__ = ["hash_bytes", "hash_value", "source_hash"]
