"""Ports and health: refuse a busy port before anything starts; wait until the services answer."""

from __future__ import annotations

import contextlib
import socket
import time

from wind_pipeline.stack.console import StackError, say
from wind_pipeline.stack.processes import Child, check_children

PROGRESS_EVERY_S = 10

LOCATION_STATUS_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def check_ports_free(host: str, ports: dict[str, tuple[int, str]]) -> None:
    """Fail with one line naming the first busy port and the option that moves it.

    ``ports`` maps a service name to (port, option).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for service, (port, option) in ports.items():
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the servers do: a port whose old connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as error:
                raise StackError(
                    f"port {port} on {host} (the {service}) is busy ({error.strerror}); "
                    f"stop what uses it or pick another with {option}"
                ) from None


def url_host(host: str) -> str:
    """The address to put in URLs: a wildcard listener is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{host}]" if ":" in host else host


def wait_until_healthy(
    checks: dict[str, str], graphql_url: str | None, children: list[Child], timeout: float
) -> None:
    """Poll each ``name -> URL`` until it answers 200, bounded, saying what is still awaited;
    then wait for Dagster's code location to load (when there is a Dagster). A child dying
    meanwhile ends the wait."""
    import httpx

    pending = dict(checks)
    started = time.monotonic()
    next_progress = started + PROGRESS_EVERY_S
    with httpx.Client(timeout=2) as client:
        while pending:
            check_children(children)
            for name, url in list(pending.items()):
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        del pending[name]
                        say(f"{name}: up ({time.monotonic() - started:.0f} s)")
            now = time.monotonic()
            if pending and now - started > timeout:
                logs = children[0].log.parent if children and children[0].log else "the logs"
                raise StackError(
                    f"{' and '.join(pending)} did not answer within {timeout:.0f} s; see the "
                    f"logs in {logs} (or raise --timeout)"
                )
            if pending and now >= next_progress:
                say(f"still waiting for {' and '.join(pending)} ({now - started:.0f} s)")
                next_progress = now + PROGRESS_EVERY_S
            time.sleep(0.5)
        if graphql_url:
            _wait_for_code_location(client, graphql_url, started + timeout)


def _wait_for_code_location(client, graphql_url: str, deadline: float) -> None:
    """Report (not fail on) a code location that does not load.

    ``dagster dev`` keeps running with a broken location so that a fix and a Reload recover it;
    the stack does the same.
    """
    import httpx

    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError, TypeError):
            body = client.post(graphql_url, json={"query": LOCATION_STATUS_QUERY}).json()
            entries = body["data"]["workspaceOrError"]["locationEntries"]
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                for entry in entries:
                    error = entry["locationOrLoadError"]
                    if error and error["__typename"] == "PythonError":
                        first = error["message"].strip().splitlines()[0]
                        say(f"WARNING: code location {entry['name']} failed to load: {first}")
                return
        time.sleep(0.5)
    say("WARNING: the code location is still loading; the UI will show it when ready")
