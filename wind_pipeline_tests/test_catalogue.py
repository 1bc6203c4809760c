"""The catalogue: the source's ranges, units and turbines read over HTTP, names normalised once."""

import dataclasses

import pytest

import connector_api.schema as api_schema
from wind_pipeline.etl.catalogue import Catalogue, Variable, fetch_catalogue, normalise_names
from wind_pipeline.etl.client import ConnectorClient
from wind_pipeline.etl.errors import InvalidInputError

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
