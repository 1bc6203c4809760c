"""``wind-stack --object-store``: the IO manager's data in a local S3 server instead of a folder.

SeaweedFS (``object_store``) runs as one more child of the stack, on loopback, its data in
``<data dir>/s3`` and its credentials made once and kept there, so a second start finds the
same objects with the same keys. ``./.env`` then carries ``WIND_PIPELINE_STORAGE_URL=s3://…``
and the ``AWS_*`` variables, so ``dagster`` and ``wind-etl`` typed in the repo root use it too.
"""

from __future__ import annotations

import json
import secrets
import signal
from pathlib import Path

from wind_pipeline.stack import object_store
from wind_pipeline.stack.console import StackError, say
from wind_pipeline.stack.processes import Child

BUCKET = "wind"
PREFIX = "storage"
ACCESS_KEY = "wind-stack"


def credentials(folder: Path) -> tuple[str, str]:
    """The access key and secret of this data folder: those saved by an earlier start, else new."""
    config = folder / "s3.json"
    try:
        identity = json.loads(config.read_text())["identities"][0]["credentials"][0]
        return identity["accessKey"], identity["secretKey"]
    except (OSError, ValueError, KeyError, IndexError):
        return ACCESS_KEY, secrets.token_urlsafe(24)


def start(folder: Path, port: int, timeout: float) -> tuple[Child, dict[str, str]]:
    """Start SeaweedFS on ``folder``; return it as a child of the stack, and its variables."""
    say(f"object store: starting SeaweedFS (data in {folder}, S3 on 127.0.0.1:{port})")
    access_key, secret = credentials(folder)
    try:
        store = object_store.start(folder, access_key, secret, BUCKET, s3_port=port,
                                   timeout=timeout)  # fmt: skip
    except FileNotFoundError as missing:
        raise StackError(str(missing)) from None
    except (OSError, RuntimeError, TimeoutError) as problem:
        raise StackError(f"the object store did not start: {problem}") from None
    child = Child("object store", store.process.pid, signal.SIGTERM, store.log, store.process)
    return child, store.environment(PREFIX)
