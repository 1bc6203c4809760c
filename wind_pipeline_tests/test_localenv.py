"""``./.env`` as the stack writes it and Dagster reads it: the shell's value wins, a foreign file
is never overwritten, a stopped stack is named instead of retried."""

from __future__ import annotations

import os

import pytest

from wind_pipeline import localenv

URL = 'postgresql+psycopg2://postgres:@/target?host=/a path/with "quotes"\\and a backslash'


def test_dagster_reads_what_the_stack_wrote_and_the_shell_wins(tmp_path, monkeypatch):
    from dagster._core.secrets.env_file import get_env_var_dict  # what every dagster command uses

    localenv.write(tmp_path / ".env", {"TARGET_DATABASE_URL": URL, "CONNECTOR_API_URL": "http://a"})
    monkeypatch.delenv("TARGET_DATABASE_URL", raising=False)
    monkeypatch.setenv("CONNECTOR_API_URL", "http://exported")

    loaded = get_env_var_dict(str(tmp_path))

    assert loaded["TARGET_DATABASE_URL"] == URL
    assert loaded["CONNECTOR_API_URL"] == "http://exported"
    assert loaded == localenv.read(tmp_path / ".env")
    assert (tmp_path / ".env").stat().st_mode & 0o077 == 0  # it may hold the API key


def test_a_foreign_env_file_is_never_overwritten(tmp_path):
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=secret\n")
    with pytest.raises(localenv.ForeignEnvFileError, match=r"mv \.env deploy\.env"):
        localenv.write(tmp_path / ".env", {"TARGET_DATABASE_URL": URL})
    assert (tmp_path / ".env").read_text() == "POSTGRES_PASSWORD=secret\n"
    assert localenv.read(tmp_path / ".env") == {}


def test_apply_fills_only_what_is_unset_and_names_a_stopped_stack(tmp_path, monkeypatch):
    stack = tmp_path / ".wind"
    stack.mkdir()
    env_file = tmp_path / ".env"
    localenv.write(env_file, {localenv.STACK_DIR_ENV: str(stack), "TARGET_DATABASE_URL": URL})
    for name in (localenv.STACK_DIR_ENV, "TARGET_DATABASE_URL", "COMPOSE_FILE"):
        monkeypatch.setenv(name, "")  # recorded, so that what apply() sets is undone after
        monkeypatch.delenv(name)

    with pytest.raises(localenv.StackNotRunningError, match="is not running: start it with"):
        localenv.apply(["2024-01-01"], path=env_file)
    assert localenv.apply(["--help"], path=env_file)  # the help needs no stack
    monkeypatch.delenv("TARGET_DATABASE_URL")

    (stack / "stack.pid").write_text(f"{os.getpid()}\n")  # a live pid: the stack runs
    assert localenv.apply(["2024-01-01"], path=env_file)["TARGET_DATABASE_URL"] == URL
    assert os.environ["TARGET_DATABASE_URL"] == URL

    monkeypatch.setenv("TARGET_DATABASE_URL", "postgresql://mine@host/db")
    assert "TARGET_DATABASE_URL" not in localenv.apply(["2024-01-01"], path=env_file)
    assert os.environ["TARGET_DATABASE_URL"] == "postgresql://mine@host/db"
