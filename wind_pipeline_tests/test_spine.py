"""One spine for wind-etl and Dagster: the layering it rests on, and both callers agreeing.

The guards read the source, not the running code: ``defs/`` may import the core's public names
and, of ``etl/pipeline.py``, only the spine; no product module grows past 400 lines.
"""

import ast
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from wind_pipeline.defs.assets import raw_readings, signal_data, ten_minute_stats
from wind_pipeline.etl.calendar import day_start
from wind_pipeline_tests.conftest import DAY
from wind_pipeline_tests.dagster_support import resources
from wind_pipeline_tests.reference import (
    assert_stats_equal,
    day_bounds,
    reference_stats,
    target_stats,
)

ROOT = Path(__file__).resolve().parents[1]
SPINE = {"Selection", "select", "extract_days", "transform_days", "load_day", "InTransaction"}
MAX_LINES = 400
# connector_api/generator.py is being split into its parts on another branch (the same issue);
# until that lands it is the one module allowed to fail the line count here.
SPLIT_ELSEWHERE = {"connector_api/generator.py"}


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from … import name`` and ``import module`` in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_defs_import_only_public_names_of_the_core_and_only_the_spine_of_the_pipeline():
    wrong = []
    for path in sorted((ROOT / "wind_pipeline" / "defs").glob("*.py")):
        for module, name in _imports(path):
            core = module.startswith("wind_pipeline.etl") or module == "wind_pipeline.cli"
            if core and name.startswith("_"):
                wrong.append(f"{path.name}: private {module}.{name}")
            if module == "wind_pipeline.etl.pipeline" and name not in SPINE:
                wrong.append(f"{path.name}: {module}.{name} is not the spine")
            if (module, name) in (("wind_pipeline.etl", "pipeline"), ("wind_pipeline", "cli")):
                wrong.append(f"{path.name}: imports the module {module}.{name} whole")
            if module == "wind_pipeline.cli":
                wrong.append(f"{path.name}: imports the CLI ({name})")
    assert not wrong


PRODUCT = sorted(
    path.relative_to(ROOT).as_posix()
    for package in ("wind_pipeline", "connector_api")
    for path in (ROOT / package).rglob("*.py")
    if "migrations" not in path.parts
)


@pytest.mark.parametrize(
    "module",
    [
        pytest.param(m, marks=pytest.mark.xfail(reason="split on another branch", strict=False))
        if m in SPLIT_ELSEWHERE
        else m
        for m in PRODUCT
    ],
)
def test_no_product_module_is_over_400_lines(module):
    lines = len((ROOT / module).read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def _off_grid_readings(source_url: str) -> None:
    """Three readings between the minutes of WTG01's first window: 13 non-NULL readings in it."""
    engine = sa.create_engine(source_url)
    start = day_start(DAY)
    with engine.begin() as conn:
        for second in (30, 90, 150):
            conn.execute(
                sa.text(
                    "INSERT INTO data (turbine_id, timestamp, wind_speed, power) "
                    "VALUES ('WTG01', :t + make_interval(secs => :s), 6.0, 700.0)"
                ),
                {"t": start, "s": second},
            )
    engine.dispose()


def _stored(target_url: str) -> list[tuple]:
    """Every target row by signal name, as stored."""
    engine = sa.create_engine(target_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT s.name, d.timestamp, d.value FROM data d JOIN signal s ON s.id = "
                "d.signal_id ORDER BY 1, 2"
            )
        ).all()
    engine.dispose()
    return [tuple(row) for row in rows]


def test_with_qc_off_dagster_and_wind_etl_load_the_same_rows(
    seed_source, source_url, serve_api, make_database, tmp_path, monkeypatch
):
    from wind_pipeline.cli import main

    seed_source(days=1, turbines=2)
    _off_grid_readings(source_url)
    api_url = serve_api()
    by_dagster, by_cli = make_database(), make_database()

    result = dg.materialize(
        [raw_readings, ten_minute_stats, signal_data],
        resources=resources(api_url, by_dagster, tmp_path / "storage"),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=DAY.isoformat(),
        run_config={"ops": {"ten_minute_stats": {"config": {"quality_control": False}}}},
    )
    assert result.success
    checked = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checked["statistics_consistent"].passed
    assert checked["target_matches_stats"].passed

    monkeypatch.chdir(tmp_path)  # no ./.env of a local stack here
    argv = [DAY.isoformat(), "--qc", "off", "--api-url", api_url, "--database-url", by_cli]
    assert main(argv) == 0

    assert _stored(by_dagster) == _stored(by_cli)
    start, end = day_bounds(DAY)
    loaded = target_stats(by_dagster, start, end)
    assert max(row[7] for row in loaded) == 13  # the first window of WTG01, off-grid included
    assert_stats_equal(loaded, reference_stats(source_url, start, end, qc=False))
