"""The persistent data folder (``.wind/`` by default): its layout and who owns it."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from wind_pipeline import localenv
from wind_pipeline.stack.console import StackError
from wind_pipeline.stack.processes import pid_alive

REPO_ROOT = Path(__file__).resolve().parents[2]  # a clone (editable install) has the yaml files

# The minimal instance when the repo's dagster.yaml is not at hand (a non-editable install).
FALLBACK_DAGSTER_YAML = """\
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class DataFolder:
    """Where everything of one stack lives; a second start on the same folder reuses it."""

    root: Path

    @property
    def pgdata(self) -> Path:
        return self.root / "pg"

    @property
    def storage(self) -> Path:
        return self.root / "storage"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lock(self) -> Path:
        return self.root / "stack.pid"

    @property
    def children(self) -> Path:
        """pid, start time and name of each child: how a later start finds leftovers."""
        return self.root / "children.pids"


def check_folder_free(folder: DataFolder) -> None:
    """One stack per data folder: refuse while the stack recorded in its lock file lives."""
    other = None
    with contextlib.suppress(OSError, ValueError):
        other = int(folder.lock.read_text().strip())
    if other is not None and other != os.getpid() and pid_alive(other):
        raise StackError(
            f"another wind-stack (pid {other}) is using {folder.root}; stop it first "
            "or pass another --data-dir"
        )


@contextlib.contextmanager
def owned(folder: DataFolder) -> Iterator[None]:
    """Claim the data folder for this process (checked free just before)."""
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.lock.write_text(f"{os.getpid()}\n")
    try:
        yield
    finally:
        folder.lock.unlink(missing_ok=True)


def check_env_file_ours(path: Path) -> None:
    """Refuse, before anything starts, to take over a ``.env`` that someone else wrote."""
    if path.exists() and not localenv.is_ours(path):
        raise StackError(
            f"{path} was not written by wind-stack and is never overwritten; the stack writes "
            "./.env for dagster and wind-etl typed here. If that file configures docker compose, "
            "rename it (`mv .env deploy.env`: compose reads deploy.env), then start again"
        )


def write_env_file(path: Path, env: dict[str, str]) -> None:
    try:
        localenv.write(path, env)
    except (OSError, localenv.ForeignEnvFileError) as problem:
        raise StackError(f"cannot write {path}: {problem}") from None


def prepare_dagster_home(home: Path) -> None:
    """DAGSTER_HOME with the repo's dagster.yaml (refreshed each start, so edits apply)."""
    home.mkdir(parents=True, exist_ok=True)
    source = REPO_ROOT / "dagster.yaml"
    if source.exists():
        shutil.copyfile(source, home / "dagster.yaml")
    else:
        (home / "dagster.yaml").write_text(FALLBACK_DAGSTER_YAML)


def workspace_args() -> list[str]:
    """``dagster dev`` target: the repo's workspace.yaml, else the module itself."""
    workspace = REPO_ROOT / "workspace.yaml"
    return ["-w", str(workspace)] if workspace.exists() else ["-m", "wind_pipeline.definitions"]
