"""HTTP client of the connector API: Arrow transport, timeouts, retries for transient failures.

Connection errors, timeouts and 5xx are retried with exponential backoff and jitter, then raised
as ``ApiUnavailableError``; a 4xx is the request's fault and is raised at once as
``ApiRejectedError`` with the API's own ``detail``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from wind_pipeline.etl.errors import (
    ApiRejectedError,
    ApiUnavailableError,
    InvalidInputError,
    TerminalError,
)
from wind_pipeline.etl.retries import (
    API_BACKOFF,
    API_RETRIES,
    API_TIMEOUT,
    CONNECT_TIMEOUT,
    backoff_delay,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from wind_pipeline.etl.versions import SourceDay

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def _detail(response: httpx.Response) -> str:
    """The API's ``detail`` as one line (FastAPI's validation errors are a list of dicts)."""
    try:
        detail: Any = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(map(str, item.get('loc', [])[1:]))}: {item.get('msg', item)}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return " ".join(str(detail).split()) or response.reason_phrase


def _checked_base_url(base_url: str) -> str:
    """The URL without a trailing slash; refuses at once what no retry could fix."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as exc:
        problem = str(exc)
    else:
        problem = ""
        if url.scheme not in ("http", "https") or not url.host:
            problem = "no http(s) scheme or host"
        elif url.port is not None and not 0 < url.port < 65536:
            problem = f"port {url.port} is out of range"
    if problem:
        raise InvalidInputError(
            f"malformed connector API URL {base_url!r}: {problem}",
            hint="give one like http://127.0.0.1:8000 with --api-url or CONNECTOR_API_URL",
        )
    return base_url.rstrip("/")


class ConnectorClient:
    """One ``httpx.Client`` to the connector API; use as a context manager or call ``close()``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = API_TIMEOUT,
        retries: int = API_RETRIES,
        backoff: float = API_BACKOFF,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = _checked_base_url(base_url)
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        headers = {}
        if api_key:
            headers["X-API-Key"] = api_key
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            transport=transport,
            # Plain http has no certificates to check; loading the CA bundle costs ~70 ms.
            verify=not self.base_url.startswith("http://"),
        )

    def __enter__(self) -> ConnectorClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def fetch(
        self,
        start: datetime,
        end: datetime,
        variables: Sequence[str],
        turbines: Sequence[str] | None = None,
    ) -> pa.Table:
        """Readings in ``[start, end)``: ``turbine_id``, ``timestamp``, a column per variable.

        ``turbines`` None asks for every turbine; rows come ordered by (turbine_id, timestamp).
        """
        params = {"start": _iso_utc(start), "end": _iso_utc(end), "variables": ",".join(variables)}
        if turbines is not None:
            params["turbines"] = ",".join(turbines)
        body = self._get("/data", params)
        return _read_arrow(body, variables)

    def days(
        self, first: date, last: date, turbines: Sequence[str] | None = None
    ) -> list[SourceDay]:
        """``GET /days`` for ``first``..``last`` (inclusive): a row per (day, turbine) with data.

        ``turbines`` None asks for every turbine. Rows come ordered by (day, turbine).
        """
        from wind_pipeline.etl.versions import parse_days

        end = last + timedelta(days=1)  # the API's dates are half-open
        params = {"start": first.isoformat(), "end": end.isoformat()}
        if turbines is not None:
            params["turbines"] = ",".join(turbines)
        return parse_days(self.get_json("/days", params))

    def get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        """The JSON body of ``GET path`` (``/variables``, ``/turbines``), same retry rules."""
        body = self._get(path, params or {}, accept="application/json")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise TerminalError(
                f"the connector API's {path} did not answer JSON: {exc}",
                hint="check that --api-url points at the connector API",
            ) from exc

    def _get(self, path: str, params: dict[str, str], accept: str = ARROW_STREAM) -> bytes:
        """The body of a 2xx answer, retrying transient failures; raises on anything else."""
        last_problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(backoff_delay(attempt - 1, self.backoff))
            try:
                response = self._http.get(path, params=params, headers={"Accept": accept})
            except httpx.TransportError as exc:  # refused, reset, timed out, broken stream
                last_problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                continue
            if response.status_code >= 500:
                last_problem = f"HTTP {response.status_code}: {_detail(response)}"
                continue
            if response.status_code >= 400:
                raise _rejected(response)
            return response.content
        attempts = self.retries + 1
        raise ApiUnavailableError(
            f"the connector API at {self.base_url} is unavailable after {attempts} "
            f"attempt{'s' if attempts > 1 else ''} ({last_problem})",
            hint="check that it is running and --api-url / CONNECTOR_API_URL",
        )


def _rejected(response: httpx.Response) -> ApiRejectedError:
    hint = ""
    if response.status_code in (401, 403):
        hint = "set --api-key or CONNECTOR_API_KEY to the API's key"
    elif response.status_code == 404:
        hint = "is --api-url (CONNECTOR_API_URL) the connector API's base URL?"
    return ApiRejectedError(response.status_code, _detail(response), hint=hint)


def _read_arrow(body: bytes, variables: Sequence[str]) -> pa.Table:
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(body).read_all()
    except pa.ArrowInvalid as exc:
        raise TerminalError(
            f"the connector API did not answer with an Arrow stream: {exc}",
            hint="check that --api-url points at the connector API",
        ) from exc
    expected = ["turbine_id", "timestamp", *variables]
    if table.column_names != expected:
        raise TerminalError(
            f"the connector API answered columns {table.column_names}, expected {expected}"
        )
    return table
