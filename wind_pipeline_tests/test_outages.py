"""Live outages: a reproducible plan, and a writer that delivers every withheld reading late,
driven by a simulated clock against the real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg2
import pyarrow as pa

from connector_api import cli, db, generator, live, outages
from connector_api.outages import MAX_LATENESS, MINUTE, OutageWriter
from wind_pipeline_tests.conftest import DAY

FLEET = ["WTG01", "WTG02", "WTG03"]
MIDNIGHT = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)


def test_the_plan_is_reproducible_and_keeps_its_documented_rate_and_lengths():
    month = (MIDNIGHT, MIDNIGHT + timedelta(days=30))
    plan = {t: outages.outages(7, t, *month) for t in FLEET}
    assert plan == {t: outages.outages(7, t, *month) for t in FLEET}  # same seed, same plan
    assert plan != {t: outages.outages(8, t, *month) for t in FLEET}
    assert plan["WTG01"] != plan["WTG02"]  # each turbine its own
    found = [o for t in FLEET for o in plan[t]]
    # 1/24 per turbine-hour: 90 expected over 3 turbines x 30 days (Poisson: 5 sigma is +-47)
    assert 45 <= len(found) <= 135
    for o in found:
        assert o.start.minute == 0 and 1 <= (o.end - o.start) / timedelta(hours=1) <= 6
        assert timedelta(minutes=10) <= o.delivered - o.end <= timedelta(minutes=180)
    assert {round((o.end - o.start) / timedelta(hours=1)) for o in found} == set(range(1, 7))


def test_every_minute_is_delivered_once_past_or_when_its_outage_is_over():
    start, end = MIDNIGHT, MIDNIGHT + timedelta(days=2)
    rows = generator.generate(start, end, seed=7, turbines=len(FLEET))
    delivery = outages.delivery_us(7, rows)
    stamps = rows.column("timestamp").cast(pa.int64()).to_numpy()
    ids = rows.column("turbine_id").to_pylist()
    withheld = 0
    for index in range(0, rows.num_rows, 97):  # a sample, against the per-minute function
        minute = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(stamps[index]))
        expected = outages.delivered_at(7, ids[index], minute)
        assert delivery[index] == (expected - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
            microseconds=1
        )
        covering = [
            o for o in outages.outages(7, ids[index], start, end) if o.start <= minute < o.end
        ]
        if covering:
            withheld += 1
            assert expected == max(o.delivered for o in covering)
        else:
            assert expected == minute + MINUTE
    assert withheld > 0
    lateness = delivery - stamps
    assert lateness.min() == 60_000_000  # one minute: the minute has passed
    assert lateness.max() <= MAX_LATENESS // timedelta(microseconds=1)


def keys(url: str) -> set[tuple[str, int]]:
    with psycopg2.connect(db.libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute('SELECT turbine_id, (extract(epoch FROM "timestamp") * 1e6)::bigint FROM data')
        return set(cur.fetchall())


def test_the_writer_withholds_and_then_delivers_every_reading(source_url):
    """A day and a half in 25-minute ticks of a simulated clock, with a restart halfway."""
    seed, fleet = 7, len(FLEET)
    end = MIDNIGHT + timedelta(hours=36)
    reference = generator.generate(MIDNIGHT, end, seed=seed, turbines=fleet, faults=True)
    delivery = outages.delivery_us(seed, reference)
    stamps = reference.column("timestamp").cast(pa.int64()).to_numpy()
    ids = np.asarray(reference.column("turbine_id").to_pylist(), dtype=object)

    writer = OutageWriter(source_url, seed=seed, faults=True, turbines=fleet)
    now, late_seen, ticks = MIDNIGHT + timedelta(hours=2, seconds=20), 0, 0
    while now < end + MAX_LATENESS + timedelta(minutes=30):
        if ticks == 40:
            writer = OutageWriter(source_url, seed=seed, faults=True, turbines=fleet)  # restart
        tick = writer.tick(now)
        late_seen += tick.late_rows if tick else 0
        until = min(now.replace(second=0), end)
        limit = (until - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        now_us = (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        due = (delivery <= now_us) & (stamps < limit)
        present = {k for k in keys(source_url) if k[1] < limit}
        assert present == set(zip(ids[due], stamps[due].tolist(), strict=True)), now
        now += timedelta(minutes=25)
        ticks += 1
        if now >= end:
            break
    assert late_seen > 0  # outages happened, and their readings came late

    # past every delivery time, every reading of the range is there with the generated values
    writer.tick(end + MAX_LATENESS + MINUTE)
    with psycopg2.connect(db.libpq_url(source_url)) as conn, conn.cursor() as cur:
        cur.execute(
            'SELECT turbine_id, "timestamp", wind_speed, power, ambient_temperature FROM data'
            ' WHERE "timestamp" < %s ORDER BY 1, 2',
            (end,),
        )
        stored = cur.fetchall()
    expected = [
        (r["turbine_id"], r["timestamp"], r["wind_speed"], r["power"], r["ambient_temperature"])
        for r in reference.to_pylist()
    ]
    assert stored == expected


def test_outages_need_live_and_the_help_states_the_plan(capsys):
    assert cli.main(["serve", "--outages", "--database-url", "postgresql://nowhere/x"]) == 2
    assert "--outages needs --live" in capsys.readouterr().err
    help_text = cli.OUTAGES_HELP
    assert f"1/{round(1 / outages.OUTAGE_PROBABILITY_PER_HOUR)}" in help_text
    assert "{}-{} hours".format(*outages.OUTAGE_HOURS) in help_text
    assert "{}-{} minutes".format(*outages.DELAY_MINUTES) in help_text


def test_the_live_appender_runs_the_outage_writer(source_url):
    """The thread's loop with a clock held just before a minute's end, so it ticks at once."""
    now = MIDNIGHT + timedelta(hours=12, seconds=59.9)  # WTG01 withholds 09:00-11:00 till 12:33
    cli._upgrade_schema(source_url)  # what `serve` runs first
    writer = OutageWriter(source_url, seed=7, turbines=len(FLEET))
    appender = live.LiveAppender(source_url, outages=writer, clock=lambda: now)
    appender.start()
    try:
        deadline = time.monotonic() + 30
        while not keys(source_url) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        appender.stop()
        appender.join(timeout=30)
    assert not appender.is_alive()
    rows = generator.generate(MIDNIGHT, MIDNIGHT + timedelta(hours=12), seed=7, turbines=3)
    delivery = outages.delivery_us(7, rows)
    due = delivery <= (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    assert 0 < due.sum() < rows.num_rows  # some readings of the day are still withheld
    stamps = rows.column("timestamp").cast(pa.int64()).to_numpy()[due].tolist()
    ids = np.asarray(rows.column("turbine_id").to_pylist(), dtype=object)[due]
    assert keys(source_url) == set(zip(ids, stamps, strict=True))
