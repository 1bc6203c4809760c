"""numpy in and out of Arrow without pyarrow's pandas bridge.

``Array.to_numpy``, ``pa.array(ndarray)`` and ``pa.scalar`` all import pandas in pyarrow 26
(+0.23 s measured, of the 0.8 s budget of a ``wind-etl DATE`` process, README "Measured
performance"). ``to_tensor`` and ``Array.from_buffers`` are pyarrow's own zero-copy ways that do
not, so the core uses these small helpers and nothing decodes Arrow buffers by hand.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def to_numpy(column: pa.ChunkedArray | pa.Array, dtype: type[np.generic]) -> np.ndarray:
    """One numpy array of a numeric, timestamp (µs) or date column; NULL becomes NaN for floats."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if pa.types.is_timestamp(column.type):  # as microseconds since the epoch, whatever the unit
        if column.type.unit != "us":
            column = column.cast(pa.timestamp("us", tz=column.type.tz))
        column = column.cast(pa.int64())
    elif pa.types.is_date(column.type):  # as days since the epoch
        column = column.cast(pa.int32())
    target = pa.from_numpy_dtype(dtype)
    if column.type != target:
        column = column.cast(target)
    if len(column) == 0:
        return np.empty(0, dtype=dtype)
    values = column.to_tensor(allow_nulls=True).to_numpy().reshape(-1)
    if column.null_count:
        missing = pc.is_null(column).cast(pa.uint8()).to_tensor().to_numpy().reshape(-1)
        values = np.where(missing.astype(bool), np.nan, values)
    return values


def from_numpy(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An Arrow array sharing ``values``' memory; ``valid`` False marks a NULL."""
    values = np.ascontiguousarray(values)
    kind = pa.from_numpy_dtype(values.dtype)
    bitmap = None
    if valid is not None and not valid.all():
        bitmap = pa.py_buffer(np.packbits(valid.astype(bool), bitorder="little"))
    return pa.Array.from_buffers(kind, len(values), [bitmap, pa.py_buffer(values)])


def timestamps(micros: np.ndarray) -> pa.Array:
    """``timestamp[us, UTC]`` from microseconds since the epoch."""
    return from_numpy(micros.astype(np.int64, copy=False)).view(pa.timestamp("us", tz="UTC"))


def strings(names: Sequence[str], index: np.ndarray) -> pa.DictionaryArray:
    """``names[index[i]]`` for each row, dictionary-encoded (as the API sends ``turbine_id``)."""
    encoded = [name.encode() for name in names]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum([len(e) for e in encoded])
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    dictionary = pa.Array.from_buffers(pa.string(), len(encoded), buffers)
    return pa.DictionaryArray.from_arrays(
        from_numpy(index.astype(np.int32, copy=False)), dictionary
    )


def codes(column: pa.ChunkedArray | pa.Array, names: Sequence[str]) -> np.ndarray:
    """Each row's position in ``names`` (int64; -1 for a value not in it).

    A dictionary column (as the API sends ``turbine_id``) is mapped through its small dictionary;
    a plain one is encoded first.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    position = {name: i for i, name in enumerate(names)}
    lookup = np.array(
        [position.get(name, -1) for name in column.dictionary.to_pylist()] or [-1], dtype=np.int64
    )
    indices = to_numpy(column.indices, np.int64)
    return lookup[indices] if len(indices) else np.empty(0, dtype=np.int64)


def names(column: pa.ChunkedArray | pa.Array) -> tuple[str, ...]:
    """The distinct values of a string or dictionary column, in its dictionary's order."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    return tuple(str(name) for name in column.dictionary.to_pylist())


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError, TypeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Hand the pages of a finished day back to the OS.

    pyarrow's allocator (mimalloc here) keeps freed pages for reuse, so a run's resident memory
    crept up with the range although its live data did not (measured: a 30-day range of 10
    turbines peaked 23 MB above a 2-day one). The system allocator instead fragmented: a year of
    one turbine peaked at 910 MB against 281 MB. Releasing after each day keeps both flat. The
    C library's malloc (numpy, psycopg2) likewise keeps what a thread freed in that thread's
    arena: with two threads loading days, a 30-day range of 25 turbines peaked 15-25 MB above a
    2-day one; with ``malloc_trim`` its peak fell by about 15 MB, to within the noise of the
    2-day one (wind_pipeline_tests/test_dagster_memory.py; docs/pitfalls.md § Memory).
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
