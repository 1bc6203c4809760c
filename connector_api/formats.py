"""The response formats: each an encoder from the same stream of columnar chunks to bytes.

Keeping every format over one stream is what makes them agree value for value, and lets each
stream a large range chunk by chunk.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import orjson

from connector_api.db import Columns
from connector_api.schema import TIME_COLUMN

ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"


def _timestamp_strings(chunk: Columns) -> np.ndarray:
    """ISO 8601 UTC with ``Z``; whole seconds unless a reading has a finer timestamp."""
    us = chunk.timestamps_us
    unit = "s" if not np.any(us % 1_000_000) else "us"
    return np.datetime_as_string(us.astype("datetime64[us]"), unit=unit, timezone="UTC")


def _value_lists(chunk: Columns, variables: Sequence[str]) -> list[list[float | None]]:
    columns = []
    for name in variables:
        values = chunk.values[name].tolist()
        for i in np.flatnonzero(chunk.nulls[name]).tolist():
            values[i] = None
        columns.append(values)
    return columns


def _rows(chunk: Columns, variables: Sequence[str]) -> list[dict]:
    keys = (TIME_COLUMN, *variables)
    columns = (_timestamp_strings(chunk).tolist(), *_value_lists(chunk, variables))
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


def encode_json(chunks: Iterable[Columns], variables: Sequence[str]) -> Iterator[bytes]:
    """One JSON array of ``{"timestamp", <variable>: number|null}`` objects."""
    yield b"["
    separator = b""
    for chunk in chunks:
        if len(chunk):
            yield separator + orjson.dumps(_rows(chunk, variables))[1:-1]
            separator = b","
    yield b"]"


def encode_ndjson(chunks: Iterable[Columns], variables: Sequence[str]) -> Iterator[bytes]:
    """One JSON object per line."""
    # Objects hold only numbers, null and timestamps, so "},{" occurs only between them unless
    # a column name contains a brace: then fall back to one dumps per row.
    split = not any("}" in name for name in variables)
    for chunk in chunks:
        if len(chunk):
            rows = _rows(chunk, variables)
            if split:
                yield orjson.dumps(rows)[1:-1].replace(b"},{", b"}\n{") + b"\n"
            else:
                yield b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows)


def encode_csv(chunks: Iterable[Columns], variables: Sequence[str]) -> Iterator[bytes]:
    """A header row, then one row per reading; an empty field is a missing reading."""
    import pyarrow as pa
    import pyarrow.csv

    yield (",".join((TIME_COLUMN, *variables)) + "\n").encode()
    options = pyarrow.csv.WriteOptions(include_header=False, quoting_style="none")
    for chunk in chunks:
        if len(chunk):
            table = pa.table(
                {
                    TIME_COLUMN: pa.array(_timestamp_strings(chunk)),
                    **{n: pa.array(chunk.values[n], mask=chunk.nulls[n]) for n in variables},
                }
            )
            sink = io.BytesIO()
            pyarrow.csv.write_csv(table, sink, options)
            yield sink.getvalue()


def arrow_schema(variables: Sequence[str]):
    """``timestamp`` as ``timestamp[us, UTC]``, then one float64 per variable, in order."""
    import pyarrow as pa

    return pa.schema(
        [pa.field(TIME_COLUMN, pa.timestamp("us", tz="UTC"), nullable=False)]
        + [pa.field(name, pa.float64()) for name in variables]
    )


def encode_arrow(chunks: Iterable[Columns], variables: Sequence[str]) -> Iterator[bytes]:
    """An Arrow IPC stream: the schema, then one record batch per chunk."""
    import pyarrow as pa

    schema = arrow_schema(variables)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, schema) as writer:
        for chunk in chunks:
            if len(chunk):
                arrays = [pa.array(chunk.timestamps_us, type=schema.field(0).type)]
                arrays += [pa.array(chunk.values[n], mask=chunk.nulls[n]) for n in variables]
                writer.write_batch(pa.record_batch(arrays, schema=schema))
                yield _drain(sink)
    yield _drain(sink)  # the end-of-stream marker (and the schema, if there were no rows)


def _drain(sink: io.BytesIO) -> bytes:
    data = sink.getvalue()
    sink.seek(0)
    sink.truncate()
    return data


@dataclass(frozen=True)
class Format:
    """A response format: its ``format=`` name, media type and encoder."""

    name: str
    media_type: str
    encode: Callable[[Iterable[Columns], Sequence[str]], Iterator[bytes]]


FORMATS = {
    f.name: f
    for f in (
        Format("json", "application/json", encode_json),
        Format("ndjson", "application/x-ndjson", encode_ndjson),
        Format("csv", "text/csv", encode_csv),
        Format("arrow", ARROW_MEDIA_TYPE, encode_arrow),
    )
}
_BY_MEDIA_TYPE = {f.media_type: f for f in FORMATS.values()}
_WILDCARDS = {"*/*": FORMATS["json"], "application/*": FORMATS["json"], "text/*": FORMATS["csv"]}


class NotAcceptable(ValueError):
    """The Accept header names no format we produce."""


def negotiate(format_name: str | None, accept: str | None) -> Format:
    """``format=`` wins; else the best ``Accept`` match by quality; JSON when nothing is asked."""
    if format_name:
        return FORMATS[format_name]
    if not accept or not accept.strip():
        return FORMATS["json"]
    ranked = []
    for position, item in enumerate(accept.split(",")):
        media_type, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((-quality, position, media_type.lower()))
    for negative_quality, _, media_type in sorted(ranked):
        chosen = _BY_MEDIA_TYPE.get(media_type) or _WILDCARDS.get(media_type)
        if chosen and negative_quality < 0:
            return chosen
    allowed = ", ".join(_BY_MEDIA_TYPE)
    raise NotAcceptable(
        f"no supported media type in Accept: {accept!r}; allowed: {allowed} "
        f"(or format={'|'.join(FORMATS)})"
    )
