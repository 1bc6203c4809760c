"""``./.env``: how ``dagster`` and ``wind-etl``, typed in the project folder, find the local stack.

``wind-stack`` writes ``.env`` in the folder it starts in (``make run``: the repo root). Dagster
loads that file by itself in every command (``dagster dev``, ``dagster asset materialize``),
before it reads the instance; ``wind-etl`` reads it here, with the same reader (python-dotenv).
Each line is ``NAME="${NAME:-value}"``, so a variable the shell already sets wins: an exported
``TARGET_DATABASE_URL`` is never overridden by the stack.

docker compose would read ``./.env`` too, for its own ``${...}``: the deployment takes its
settings from ``deploy.env`` instead (``--env-file deploy.env``), and the file written here names
``docker/not-for-compose.yml`` as ``COMPOSE_FILE``, so that a plain ``docker compose up`` beside
it stops with one line saying so instead of deploying the local stack's socket paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from wind_pipeline.etl.errors import StackNotRunningError

ENV_FILE = ".env"
MARKER = "# Written by wind-stack"
STACK_DIR_ENV = "WIND_STACK_DIR"  # the data folder of the stack that wrote the file
TARGET_ENV = "TARGET_DATABASE_URL"
COMPOSE_GUARD = {"COMPOSE_FILE": "docker/not-for-compose.yml"}  # read by compose only
HOW_TO_START = "start it with `make run` (or `make services`: PostgreSQL and the API only)"


class ForeignEnvFileError(Exception):
    """``./.env`` exists and was not written by wind-stack: it is never overwritten."""


def env_path(folder: Path | None = None) -> Path:
    return (folder or Path.cwd()) / ENV_FILE


def write(path: Path, env: Mapping[str, str]) -> None:
    """Write the stack's variables as ``NAME="${NAME:-value}"`` (the shell's value wins).

    Refuses to replace a ``.env`` it did not write (a compose configuration of the previous
    release, a user's own file).
    """
    if path.exists() and not is_ours(path):
        raise ForeignEnvFileError(
            f"{path} exists and was not written by wind-stack; it is never overwritten. If it "
            "configures docker compose, rename it: `mv .env deploy.env` (compose reads deploy.env)"
        )
    lines = [
        f"{MARKER} at each start, for `dagster` and `wind-etl` typed in this folder.",
        "# Dagster loads it by itself; a variable your shell exports wins over the value here.",
        "# Not for docker compose: the deployment reads deploy.env (see .env.example).",
    ]
    values = {**env, **COMPOSE_GUARD}
    lines += [f'{name}="${{{name}:-{_quote(value)}}}"' for name, value in values.items()]
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.chmod(0o600)  # it may hold CONNECTOR_API_KEY
    temporary.replace(path)


def _quote(value: str) -> str:
    """Inside python-dotenv's double quotes only a backslash and a double quote need escaping;
    a ``$`` would start a variable (none of the stack's values has one)."""
    if "$" in value or "\n" in value:
        raise ValueError(f"cannot write {value!r} to .env")
    return value.replace("\\", "\\\\").replace('"', '\\"')


def is_ours(path: Path) -> bool:
    try:
        with path.open() as file:
            return file.readline().startswith(MARKER)
    except OSError:
        return False


def read(path: Path | None = None) -> dict[str, str]:
    """The variables of the stack's ``.env`` as Dagster would load them; {} without one."""
    path = path or env_path()
    if not is_ours(path):
        return {}
    from dotenv import dotenv_values

    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def stack_running(stack_dir: str | Path) -> bool:
    """Whether the wind-stack that owns ``stack_dir`` is alive (its lock file names a live pid)."""
    try:
        pid = int((Path(stack_dir) / "stack.pid").read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def not_running_message(stack_dir: str | Path) -> str:
    return f"the local stack ({stack_dir}) is not running: {HOW_TO_START}"


def apply(
    argv: Sequence[str] = (),
    *,
    path: Path | None = None,
    needed: tuple[str, ...] = (TARGET_ENV, "CONNECTOR_API_URL"),
) -> dict[str, str]:
    """Fill the variables the environment does not set from the stack's ``./.env``; return them.

    What ``wind-etl`` calls first, so that it finds the stack exactly as ``dagster`` does. Raises
    StackNotRunningError when it would point one of the ``needed`` variables at a stack that is
    not running (a stopped stack's socket would only be retried until the command gives up), and
    when there is no stack at all and nothing says where the target is (neither
    ``TARGET_DATABASE_URL`` nor ``--database-url``); never when ``argv`` asks for the help.
    """
    values = read(path)
    filled = {name: value for name, value in values.items() if not os.environ.get(name)}
    stack_dir = values.get(STACK_DIR_ENV)
    if {"-h", "--help"} & set(argv):
        pass
    elif stack_dir and set(filled) & set(needed) and not stack_running(stack_dir):
        raise StackNotRunningError(not_running_message(stack_dir))
    elif not values and not os.environ.get(TARGET_ENV) and not _given(argv, "--database-url"):
        raise StackNotRunningError(
            f"no local stack here (no ./.env written by wind-stack) and {TARGET_ENV} is not "
            f"set: {HOW_TO_START}; or set {TARGET_ENV} (or pass --database-url)"
        )
    os.environ.update(filled)
    return filled


def _given(argv: Sequence[str], option: str) -> bool:
    return any(arg == option or arg.startswith(f"{option}=") for arg in argv)
