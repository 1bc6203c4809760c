"""The catalogue: the source's ranges, units and turbines read over HTTP, names normalised once."""

import dataclasses
import json

import pytest

import connector_api.schema as api_schema
from wind_pipeline.etl.catalogue import (
    YAW_ERROR,
    Catalogue,
    Variable,
    fetch_catalogue,
    normalise_names,
    source_variables,
    with_derived,
)
from wind_pipeline.etl.client import ConnectorClient
from wind_pipeline.etl.errors import InvalidInputError, TerminalError
from wind_pipeline_tests.conftest import serve

CATALOGUE = Catalogue(
    {"wind_speed": Variable("wind_speed"), "power": Variable("power")}, ("WTG01", "WTG02")
)


def test_names_are_normalised_once():
    assert normalise_names([" power"]) == ("power",)
    assert normalise_names(["wind_speed,power", "wind_speed"]) == ("wind_speed", "power")
    assert normalise_names(" a , ,b ") == ("a", "b")
    assert CATALOGUE.select_variables(None) == ("wind_speed", "power")
    assert CATALOGUE.select_turbines(None) == CATALOGUE.select_turbines("") == ("WTG01", "WTG02")
    assert CATALOGUE.select_turbines(["WTG02, WTG02"]) == ("WTG02",)


def test_unknown_names_are_refused_naming_the_allowed_ones():
    with pytest.raises(InvalidInputError, match=r"unknown variable 'gust'.*wind_speed, power"):
        CATALOGUE.select_variables("power,gust")
    with pytest.raises(InvalidInputError, match=r"unknown turbines 'WTG09', 'x'.*WTG01, WTG02"):
        CATALOGUE.select_turbines(["WTG09", "x"])
    with pytest.raises(InvalidInputError, match="no variables"):
        CATALOGUE.select_variables(" , ")


def test_the_catalogue_is_the_apis(seed_source, serve_api):
    seed_source(days=1, turbines=3)
    with ConnectorClient(serve_api()) as client:
        catalogue = fetch_catalogue(client)
    assert catalogue.turbines == ("WTG01", "WTG02", "WTG03")
    wind = catalogue.variables["wind_speed"]
    known = api_schema.KNOWN_VARIABLES["wind_speed"]
    assert (wind.physical_min, wind.physical_max, wind.max_step, wind.unit) == (
        known.physical_min,
        known.physical_max,
        known.max_step,
        known.unit,
    )
    assert catalogue.variables["ambient_temperature"].unit == "°C"


def test_a_range_changed_in_the_api_is_the_pipelines(seed_source, serve_api, monkeypatch):
    seed_source(days=1)
    narrower = dataclasses.replace(api_schema.KNOWN_VARIABLES["wind_speed"], physical_max=12.5)
    monkeypatch.setitem(api_schema.KNOWN_VARIABLES, "wind_speed", narrower)
    with ConnectorClient(serve_api()) as client:
        assert fetch_catalogue(client).variables["wind_speed"].physical_max == 12.5


# /variables as the API serves it once the directions land (kind, frozen_minutes, frozen_exempt),
# and as a source of an earlier release serves it (none of the three).
DIRECTIONS_VARIABLES = [
    {"name": "power", "unit": "kW", "description": "p", "physical_min": -150.0,
     "physical_max": 3450.0, "max_step": 1500.0, "kind": "linear", "frozen_minutes": 10,
     "frozen_exempt": [0.0, 3000.0]},
    {"name": "wind_direction", "unit": "°", "description": "d", "physical_min": 0.0,
     "physical_max": 360.0, "max_step": 90.0, "kind": "circular", "frozen_minutes": 10,
     "frozen_exempt": []},
    {"name": "nacelle_position", "unit": "°", "description": "n", "physical_min": 0.0,
     "physical_max": 360.0, "max_step": 30.0, "kind": "circular", "frozen_minutes": None,
     "frozen_exempt": []},
]  # fmt: skip
OLD_VARIABLES = [
    {"name": "power", "unit": "kW", "description": "p", "physical_min": 0.0,
     "physical_max": 3000.0, "max_step": 1500.0},
]  # fmt: skip


def _catalogue_api(variables):
    """A stand-in connector API serving ``variables`` and two turbines over real HTTP."""
    from fastapi import FastAPI

    app = FastAPI()
    app.get("/variables")(lambda: variables)
    app.get("/turbines")(lambda: [{"id": "WTG02"}, {"id": "WTG01"}])
    return serve(app)


def test_kind_and_frozen_rule_are_read_from_the_api():
    with _catalogue_api(DIRECTIONS_VARIABLES) as url, ConnectorClient(url) as client:
        catalogue = fetch_catalogue(client)
    power = catalogue.variables["power"]
    assert (power.kind, power.frozen_minutes, power.frozen_exempt) == ("linear", 10, (0, 3000))
    wind = catalogue.variables["wind_direction"]
    assert (wind.kind, wind.circular, wind.frozen_minutes, wind.exempt) == (
        "circular",
        True,
        10,
        (),
    )
    assert catalogue.variables["nacelle_position"].frozen_minutes is None
    yaw = catalogue.variables[YAW_ERROR]  # derived: both directions are there
    assert (yaw.kind, yaw.unit, yaw.physical_min, yaw.physical_max) == ("circular", "°", -180, 180)
    assert yaw.columns == ("wind_direction", "nacelle_position")
    assert "wind direction minus nacelle position" in yaw.description


def test_an_earlier_api_gives_todays_rules():
    with _catalogue_api(OLD_VARIABLES) as url, ConnectorClient(url) as client:
        catalogue = fetch_catalogue(client)
    power = catalogue.variables["power"]
    assert (power.kind, power.frozen_minutes, power.frozen_exempt) == ("linear", 10, None)
    assert power.exempt == (0.0, 3000.0)  # the bounds may repeat, as before
    assert YAW_ERROR not in catalogue.variables
    with pytest.raises(InvalidInputError, match="unknown variable 'yaw_error'"):
        catalogue.select_variables("yaw_error")


def test_all_and_yaw_error_select_and_fetch_their_columns():
    with _catalogue_api(DIRECTIONS_VARIABLES) as url, ConnectorClient(url) as client:
        catalogue = fetch_catalogue(client)
    everything = ("power", "wind_direction", "nacelle_position", YAW_ERROR)
    assert catalogue.select_variables("all") == catalogue.select_variables([" all "]) == everything
    assert catalogue.source_columns(everything) == everything[:3]
    assert catalogue.select_variables("yaw_error") == (YAW_ERROR,)
    assert catalogue.source_columns(["yaw_error"]) == ("wind_direction", "nacelle_position")
    assert catalogue.source_columns(["power", "yaw_error", "wind_direction"]) == everything[:3]
    with pytest.raises(InvalidInputError, match="'all' cannot be combined"):
        catalogue.select_variables("all,power")


def test_a_variable_survives_a_json_round_trip():
    """Dagster stores the selection as JSON (``asdict``) and rebuilds ``Variable(**item)``."""
    variables = with_derived(
        {v["name"]: Variable(**{**v, "description": None}) for v in DIRECTIONS_VARIABLES}
    )
    for variable in variables.values():
        again = Variable(**json.loads(json.dumps(dataclasses.asdict(variable))))
        assert again == variable and hash(again) == hash(variable)


def test_an_unknown_kind_is_refused():
    with pytest.raises(TerminalError, match="kind 'spherical'"):
        Variable("x", kind="spherical")


def test_source_variables_stand_in_for_yaw_error():
    variables = with_derived(
        {v["name"]: Variable(**{**v, "description": None}) for v in DIRECTIONS_VARIABLES}
    )
    chosen = [variables["yaw_error"], variables["power"], variables["wind_direction"]]
    sources = source_variables(chosen)
    assert list(sources) == ["wind_direction", "nacelle_position", "power"]
    assert sources["nacelle_position"] == variables["nacelle_position"]
