"""The tests' S3 server: one SeaweedFS ``weed mini`` per session (see ``wind_pipeline.stack.
object_store``), and a fresh prefix of its bucket per test."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wind_pipeline.stack import object_store
from wind_pipeline.stack.object_store import ObjectStore


@contextmanager
def running_object_store() -> Iterator[ObjectStore]:
    """A real S3 server on loopback with random credentials, stopped by pid and its data folder
    removed at the end. Not under pytest's tmp_path, for the reason given in ``pg_server``."""
    folder = Path(tempfile.mkdtemp(prefix="wsw-"))
    store = object_store.start(folder, f"wind{secrets.token_hex(4)}", secrets.token_hex(16))
    try:
        yield store
    finally:
        object_store.stop(store, grace=3)  # its data is thrown away: no need for a clean stop
        shutil.rmtree(folder, ignore_errors=True)


def fresh_prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


def s3_filesystem(store: ObjectStore, secret: str | None = None):
    """An s3fs client of the server (a wrong ``secret`` for the refusal tests), uncached."""
    import s3fs

    return s3fs.S3FileSystem(
        key=store.access_key,
        secret=secret or store.secret_key,
        client_kwargs={"endpoint_url": store.endpoint_url, "region_name": "us-east-1"},
        skip_instance_cache=True,
    )


def listed(store: ObjectStore, prefix: str) -> list[str]:
    """Every object under ``prefix``, relative to it, sorted."""
    root = f"{store.bucket}/{prefix}/"
    return sorted(key.removeprefix(root) for key in s3_filesystem(store).find(root))
