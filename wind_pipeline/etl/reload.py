"""Loads that keep the target's ``loaded_day`` records: ``wind-etl DATE`` and ``wind-etl sync``.

Both read ``GET /days`` for their days *before* the extract and write, in each day's own
transaction, one record per (day, turbine) loaded: the version and readings ``/days`` gave, the
variables, the QC setting and the rules digest (``DayRecord.write`` as ``load_day``'s ``within``).
A reading that lands between ``/days`` and the extract is then in the rows but not in the
recorded version: the next sync reloads that (day, turbine) once more, it never misses it
(README, "Late and corrected readings").

``sync`` reloads exactly the (day, turbine) pairs that ``etl/sync.py``'s ``changes`` finds: day
by day, only the changed turbines of a day, one transaction per day, so a sync killed mid-way
leaves every day at its previous rows and record or at its new ones, and the next sync finishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from wind_pipeline.etl.catalogue import (
    Catalogue,
    Variable,
    fetch_turbines,
    fetch_variables,
    normalise_names,
)
from wind_pipeline.etl.errors import ApiRejectedError
from wind_pipeline.etl.record import DayRecord, LoadedRecord, RecordKey, read_records
from wind_pipeline.etl.rules import record_rules, reload_variables, rules_digest
from wind_pipeline.etl.selection import Selection, select, selection_of
from wind_pipeline.etl.sync import Change, changes, day_lines, turbines_by_day
from wind_pipeline.etl.versions import SourceDay

if TYPE_CHECKING:
    from wind_pipeline.etl.client import ConnectorClient
    from wind_pipeline.etl.db import RawConnectionSource
    from wind_pipeline.etl.load import InTransaction
    from wind_pipeline.etl.pipeline import DayReport


def by_day(rows: Iterable[SourceDay]) -> dict[date, tuple[dict[str, str], dict[str, int]]]:
    """``GET /days`` rows as each day's (versions by turbine, readings by turbine)."""
    days: dict[date, tuple[dict[str, str], dict[str, int]]] = {}
    for row in rows:
        versions, readings = days.setdefault(row.day, ({}, {}))
        versions[row.turbine] = row.version
        readings[row.turbine] = row.readings
    return days


def record_hook(
    selection: Selection,
    source: Iterable[SourceDay],
    *,
    qc: bool,
    run_id: str | None = None,
) -> Callable[[date], InTransaction]:
    """``run_range``'s ``within_day``: each day's records of ``selection``'s turbines.

    A turbine without a row in ``source`` (``GET /days``) is recorded with no version and 0
    readings: the source held nothing of it when the load read the versions.
    """
    rules = rules_digest(selection.limits, qc)
    days = by_day(source)

    def within_day(day: date) -> InTransaction:
        versions, readings = days.get(day, ({}, {}))
        return DayRecord(
            day,
            selection.turbines,
            versions,
            readings,
            selection.variables,
            qc,
            rules,
            run_id,
        ).write

    return within_day


def run_recorded(
    client: ConnectorClient,
    target: RawConnectionSource,
    first: date,
    last: date,
    *,
    variables: str | Sequence[str] | None = None,
    turbines: str | Sequence[str] | None = None,
    qc: bool = True,
    **options: Any,
) -> list[DayReport]:
    """``run_range`` that records what it loaded: ``GET /days`` first, then the range.

    ``options`` go to ``run_range`` (``allow_empty``, ``on_day``, ``target_retries``, …).
    """
    from wind_pipeline.etl.pipeline import run_range  # numpy and pyarrow: only to load

    selection = select(client, variables, turbines)
    source = source_days(client, first, last, selection.asked)
    return run_range(
        client,
        target,
        first,
        last,
        selection=selection,
        qc=qc,
        within_day=record_hook(selection, source, qc=qc),
        **options,
    )


def snapshot(
    client: ConnectorClient,
    target: RawConnectionSource,
    first: date,
    last: date,
    variables: str | Sequence[str] | None,
    turbines: str | Sequence[str] | None,
) -> tuple[Selection, list[SourceDay], dict[RecordKey, LoadedRecord], dict[str, Variable]]:
    """The catalogue's selection, ``GET /days`` and ``loaded_day`` of the window, read at once,
    and every variable the catalogue describes (what a loaded day's own variables are judged by).

    What ``etl/sync.py``'s ``compare`` reads, plus the catalogue, with the round trips
    overlapped in threads: with nothing to reload they are the whole sync, and sequential they
    cost about 3x ``GET /days`` alone (``benchmarks/bench_sync.py``). The versions are still
    read before any extract. A bad ``turbines`` or ``variables`` is reported first.

    ``turbines`` None compares the whole fleet, which needs no list of it: ``GET /turbines`` is
    read only to check named turbines, or to report a source without any (an empty ``/days``).
    The selection is then ``whole_fleet`` with no turbines listed (``asked`` None); the rules
    digest needs only its variables. Each extra concurrent request cost the nothing-changed sync
    about 0.5x ``GET /days`` on a loaded machine (``/turbines``: 2.4-2.9x down to 1.8x).
    """
    asked = None if turbines is None else list(normalise_names(turbines))
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="sync") as pool:
        described = pool.submit(fetch_variables, client)
        fleet = None if turbines is None else pool.submit(fetch_turbines, client)
        source = pool.submit(client.days, first, last, asked)
        held = pool.submit(read_records, target, first, last, asked)
        if fleet is not None:
            catalogue = Catalogue(described.result(), fleet.result())
            selection = selection_of(catalogue, variables, turbines)
            return selection, source.result(), held.result(), every_variable(catalogue)
        catalogue = Catalogue(described.result(), ())
        limits = catalogue.limits(catalogue.select_variables(variables))
        rows = source.result()
        if not rows:  # no reading at all: maybe no turbine either, which select reports
            Catalogue(catalogue.variables, fetch_turbines(client)).select_turbines(None)
        whole = Selection((), limits, whole_fleet=True)
        return whole, rows, held.result(), every_variable(catalogue)


def every_variable(catalogue: Catalogue) -> dict[str, Variable]:
    """Every variable the catalogue describes, derived ones (``yaw_error``) included."""
    return dict(catalogue.limits(catalogue.select_variables("all")))


def source_days(
    client: ConnectorClient, first: date, last: date, turbines: Sequence[str] | None
) -> list[SourceDay]:
    """``GET /days``, or none from a connector API older than ``/days`` (404): the load then
    records no version, and the first sync against a newer API reloads those days once."""
    try:
        return client.days(first, last, turbines)
    except ApiRejectedError as exc:
        if exc.status != 404:
            raise
        return []


@dataclass(frozen=True)
class Synced:
    """What one sync found and did: the changes, and a report per day it reloaded."""

    first: date
    last: date
    changes: list[Change]
    reports: list[DayReport]
    compared: int  # (day, turbine)s the source holds in the window

    def nothing_line(self) -> str:
        return (
            f"nothing to sync: {self.first.isoformat()}..{self.last.isoformat()} equals the "
            f"source ({plural(self.compared, 'turbine-day')} with readings)"
        )

    def done_line(self, seconds: float) -> str:
        return (
            f"synced {plural(len(self.changes), 'turbine-day')} over "
            f"{plural(len(self.reports), 'day')} in {seconds:.2f} s"
        )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def sync(
    client: ConnectorClient,
    target: RawConnectionSource,
    first: date,
    last: date,
    *,
    variables: str | Sequence[str] | None = None,
    turbines: str | Sequence[str] | None = None,
    qc: bool = True,
    dry_run: bool = False,
    on_day: Callable[[str], None] | None = None,
    **options: Any,
) -> Synced:
    """Reload exactly the changed (day, turbine) pairs of ``first``..``last`` (inclusive).

    ``on_day(line)`` hears one line per day once it is loaded (or, with ``dry_run``, at once),
    naming its turbines and reasons (``etl/sync.py``'s ``day_lines``). A retracted turbine has
    no readings left: its day is loaded with zero counts (its old rows replaced) and a record of
    0 readings. ``options`` go to ``run_range`` (``target_retries``, ``block_readings``).
    """
    selection, source, held, described = snapshot(client, target, first, last, variables, turbines)
    rules = record_rules(described, qc)  # each day judged under the variables it was loaded with
    asked = None if selection.whole_fleet else selection.turbines
    found = changes(source, held, first=first, last=last, turbines=asked, rules=rules)
    lines = dict(zip(turbines_by_day(found), day_lines(found), strict=True))
    reports: list[DayReport] = []
    for day, changed in turbines_by_day(found).items():
        if dry_run:
            if on_day is not None:
                on_day(f"{lines[day]} (dry run: not loaded)")
            continue
        from wind_pipeline.etl.pipeline import run_range  # numpy and pyarrow: only to reload

        recorded = [held[day, t].variables for t in changed if (day, t) in held]
        names = reload_variables(selection.variables, recorded, described)
        only = Selection(changed, {name: described[name] for name in names})
        (report,) = run_range(
            client,
            target,
            day,
            day,
            selection=only,
            qc=qc,
            allow_empty=True,
            within_day=record_hook(only, source, qc=qc),
            **options,
        )
        reports.append(report)
        if on_day is not None:
            on_day(f"{lines[day]}: reloaded, wrote {report.rows_written} rows")
    return Synced(first, last, found, reports, len(source))
