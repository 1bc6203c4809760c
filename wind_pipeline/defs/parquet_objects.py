"""One Parquet object per asset and day, in a local folder or an S3 bucket: where it lives, how it
is written whole or not at all, how it is read in one piece, and what a storage failure says.

The location is ``WIND_PIPELINE_STORAGE_URL`` (a folder or ``s3://bucket/prefix``), else the
folder-only ``WIND_PIPELINE_STORAGE_DIR``. S3 credentials and a non-AWS server come from the
standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``, see the
README), read when a run starts and never stored in Dagster's run configuration.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from upath import UPath

STORAGE_URL_ENV = "WIND_PIPELINE_STORAGE_URL"
STORAGE_DIR_ENV = "WIND_PIPELINE_STORAGE_DIR"
# Relative to the folder Dagster runs in (the repo root for `make run` and `dagster dev`).
DEFAULT_STORAGE = ".wind/storage"
FILE_MODE = 0o644
LOCAL_PROTOCOLS = ("", "file", "local")
# AWS variable -> s3fs storage option. Passed explicitly (when set) rather than left to botocore:
# fsspec caches a filesystem per set of options, so a changed key must make a new one.
AWS_OPTIONS = {
    "AWS_ACCESS_KEY_ID": "key",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_SESSION_TOKEN": "token",
}


class StorageError(Exception):
    """The object store could not be reached; the message says where and what to check."""


def storage_location(environ: Mapping[str, str] | None = None) -> str:
    """Where the IO manager stores: ``WIND_PIPELINE_STORAGE_URL`` wins over the folder-only
    ``WIND_PIPELINE_STORAGE_DIR``; neither set means ``.wind/storage``."""
    environ = os.environ if environ is None else environ
    return environ.get(STORAGE_URL_ENV) or environ.get(STORAGE_DIR_ENV) or DEFAULT_STORAGE


def base_path(location: str, environ: Mapping[str, str] | None = None) -> UPath:
    """The location as a ``UPath``: a plain folder, or an S3 prefix with the AWS variables'
    credentials and endpoint as storage options."""
    from upath import UPath

    environ = os.environ if environ is None else environ
    if not location.startswith("s3://"):
        if "://" in location and not location.startswith("file://"):
            scheme = location.split("://", 1)[0]
            raise ValueError(
                f"{STORAGE_URL_ENV}={location!r}: the scheme {scheme}:// is not supported; "
                "give a folder or s3://bucket/prefix"
            )
        return UPath(location)
    if not location[len("s3://") :].strip("/"):
        raise ValueError(f"{STORAGE_URL_ENV}={location!r} names no bucket: s3://bucket/prefix")
    options: dict = {opt: environ[var] for var, opt in AWS_OPTIONS.items() if environ.get(var)}
    client: dict = {}
    if environ.get("AWS_ENDPOINT_URL"):
        client["endpoint_url"] = environ["AWS_ENDPOINT_URL"]
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if region:
        client["region_name"] = region
    if client:
        options["client_kwargs"] = client
    return UPath(location.rstrip("/"), **options)


def is_local(path: UPath | Path) -> bool:
    return getattr(path, "protocol", "") in LOCAL_PROTOCOLS


def local_path(path: UPath | Path) -> Path:
    """A local ``UPath`` (``file://`` too) as the plain path the OS calls take."""
    return Path(getattr(path, "path", path))


def write_table(table: pa.Table, path: UPath | Path) -> None:
    """Write one day whole or not at all, for any number of concurrent writers and readers.

    In a folder: a temporary file of its own beside the target (so two runs writing the same
    day never share one), then ``os.replace``: a reader opens the old file or the new one, and
    the last writer wins whole. On S3: the day is encoded in memory (one day's Parquet, smaller
    than the table beside it) and sent by one PUT, which S3 applies atomically; an encoding
    error sends nothing. (A streamed upload would not do: fsspec's file object commits what it
    has when its ``with`` block exits on an error.)
    """
    if is_local(path):
        _write_local(table, local_path(path))
        return
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    with storage_errors(path):
        path.fs.pipe_file(path.path, sink.getvalue().to_pybytes())


def _write_local(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as sink:
            os.fchmod(sink.fileno(), FILE_MODE)  # mkstemp's 0600 would hide it from other users
            pq.write_table(table, sink)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def read_table(path: UPath | Path) -> pa.Table:
    """One day in one piece, so that a concurrent replace cannot mix two versions in a read.

    A file is read through one open handle; an object by one GET of the whole of it (not
    ranged reads, which could straddle a replace). ``ParquetFile`` rather than
    ``pq.read_table``, whose dataset machinery imports pandas (about 0.3 s of a run, measured).
    """
    if is_local(path):
        with open(local_path(path), "rb") as source:
            return pq.ParquetFile(source).read()
    with storage_errors(path):
        data = path.fs.cat_file(path.path)
    return pq.ParquetFile(pa.BufferReader(data)).read()


def missing_objects(folder: UPath | Path, paths: list) -> list:
    """The ``paths`` (all under ``folder``) that do not exist: one listing on S3, not a request
    per day."""
    if is_local(folder):
        return [path for path in paths if not local_path(path).exists()]
    fs = folder.fs
    with storage_errors(folder):
        fs.invalidate_cache(folder.path)  # another process may have written since
        present = set(fs.find(folder.path))
    return [path for path in paths if path.path not in present]


def _bucket(path: UPath) -> str:
    return path.path.split("/", 1)[0]


def _endpoint(path: UPath) -> str:
    client = path.storage_options.get("client_kwargs") or {}
    return client.get("endpoint_url") or "AWS S3"


def _no_bucket(path: UPath) -> str:
    return (
        f"the bucket {_bucket(path)!r} does not exist on {_endpoint(path)}: create it, or fix "
        f"{STORAGE_URL_ENV}"
    )


@contextmanager
def storage_errors(path: UPath) -> Iterator[None]:
    """Turn the S3 client's errors into one line saying what failed and what to check.

    Refused credentials and a missing bucket will not heal by retrying: they become a
    ``dg.Failure`` without retries. An unreachable endpoint may be a restart: a
    :class:`StorageError`, which the asset's RetryPolicy retries.
    """
    try:
        yield
    except dg.Failure:
        raise
    except Exception as error:
        where = f"{path} on {_endpoint(path)}"
        if isinstance(error, PermissionError):
            raise dg.Failure(
                description=f"the object store refused access to {where} ({_first_line(error)}): "
                "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                allow_retries=False,
            ) from None
        if isinstance(error, FileNotFoundError) and "bucket" in str(error).lower():
            raise dg.Failure(description=_no_bucket(path), allow_retries=False) from None
        if _is_connection_error(error):
            raise StorageError(
                f"cannot reach the object store for {where} ({_first_line(error)}): is it "
                "running, and is AWS_ENDPOINT_URL right?"
            ) from None
        raise


def _is_connection_error(error: BaseException) -> bool:
    try:
        from botocore.exceptions import ConnectionError as BotoConnectionError
    except ImportError:  # pragma: no cover - s3fs brings botocore
        return isinstance(error, ConnectionError)
    return isinstance(error, BotoConnectionError | ConnectionError)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
