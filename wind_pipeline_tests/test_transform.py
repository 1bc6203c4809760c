"""The 10-minute statistics on hand-made frames, and against pandas' own resampling."""

import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wind_pipeline.etl.errors import InvalidInputError
from wind_pipeline.etl.transform import ten_minute_stats

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def frame(minutes, **columns) -> pd.DataFrame:
    """Raw readings at ``T0 + minutes``, like extract returns them."""
    stamps = pd.Series([T0 + timedelta(minutes=m) for m in minutes]).astype("datetime64[us, UTC]")
    return pd.DataFrame(
        {"timestamp": stamps, **{k: np.asarray(v, float) for k, v in columns.items()}}
    )


def stats_of(raw, minutes, variables=("x",)):
    return ten_minute_stats(raw, T0, T0 + timedelta(minutes=minutes), list(variables))


def test_windows_with_zero_one_and_two_samples():
    raw = frame([0, 3, 10, 25], x=[1.0, 4.0, 7.0, 2.5])  # 2 samples, 1 sample, none, then 1
    out = stats_of(raw, 30)
    assert list(out["timestamp"]) == [pd.Timestamp(T0 + timedelta(minutes=m)) for m in (0, 10, 20)]
    assert list(out["count"]) == [2, 1, 1]
    assert list(out["mean"]) == [2.5, 7.0, 2.5]
    assert list(out["min"]) == [1.0, 7.0, 2.5]
    assert list(out["max"]) == [4.0, 7.0, 2.5]
    assert out["std"].iloc[0] == pytest.approx(np.std([1.0, 4.0], ddof=1), rel=1e-15)
    assert out["std"].iloc[1:].isna().all()  # std needs two samples

    empty = stats_of(frame([0], x=[1.0]), 20).iloc[1]
    assert empty["count"] == 0
    assert np.isnan([empty["mean"], empty["min"], empty["max"], empty["std"]]).all()


def test_nan_readings_are_not_samples():
    raw = frame([0, 1, 2, 3], x=[np.nan, 5.0, np.nan, 7.0], y=[np.nan] * 4)
    out = stats_of(raw, 10, ("x", "y")).set_index("variable")
    assert out.loc["x", "count"] == 2 and out.loc["x", "mean"] == 6.0
    assert out.loc["x", "std"] == pytest.approx(np.sqrt(2.0), rel=1e-15)
    assert out.loc["y", "count"] == 0 and np.isnan(out.loc["y", "mean"])


def test_frame_starting_mid_window_and_readings_outside_are_ignored():
    raw = frame([-1, 5, 6, 9, 10, 30], x=[100.0, 1.0, 2.0, 3.0, 4.0, 100.0])
    out = stats_of(raw, 20)
    assert list(out["count"]) == [3, 1]  # -1 and 30 fall outside [T0, T0 + 20 min)
    assert list(out["mean"]) == [2.0, 4.0]


def test_every_window_and_variable_is_present_sorted_with_the_contract_dtypes():
    out = stats_of(frame([], wind_speed=[], power=[]), 24 * 60, ("wind_speed", "power"))
    assert len(out) == 288  # 144 windows x 2 variables, even without a single reading
    assert list(out["variable"][:2]) == ["power", "wind_speed"]
    assert out["timestamp"].is_monotonic_increasing
    assert (out["count"] == 0).all()
    assert str(out["timestamp"].dtype) == "datetime64[us, UTC]"
    assert out["count"].dtype == np.int64
    assert all(out[c].dtype == np.float64 for c in ("mean", "min", "max", "std"))


def test_multi_day_frame_splits_at_midnight():
    raw = frame([1435, 1439, 1440, 1441], x=[1.0, 2.0, 10.0, 20.0])
    out = stats_of(raw, 2 * 24 * 60)
    assert len(out) == 288
    last_of_day, first_of_next = out.iloc[143], out.iloc[144]
    assert last_of_day["timestamp"] == pd.Timestamp("2024-01-01T23:50Z")
    assert (last_of_day["count"], last_of_day["mean"]) == (2, 1.5)
    assert first_of_next["timestamp"] == pd.Timestamp("2024-01-02T00:00Z")
    assert (first_of_next["count"], first_of_next["mean"]) == (2, 15.0)


def test_frozen_values_keep_min_le_mean_le_max():
    raw = frame(range(10), x=[0.1 + 0.2] * 10)  # a sum of these rounds away from the value
    row = stats_of(raw, 10).iloc[0]
    assert row["min"] <= row["mean"] <= row["max"]
    assert row["std"] == 0.0


def test_unsorted_input_gives_the_same_result():
    raw = frame([0, 11, 3, 15], x=[1.0, 2.0, 3.0, 4.0])
    shuffled = stats_of(raw, 20)
    ordered = stats_of(raw.sort_values("timestamp", ignore_index=True), 20)
    pd.testing.assert_frame_equal(shuffled, ordered)


def test_a_range_off_the_ten_minute_grid_is_refused():
    with pytest.raises(InvalidInputError, match="10-minute grid"):
        ten_minute_stats(frame([], x=[]), T0 + timedelta(minutes=5), T0 + timedelta(hours=1), ["x"])


def test_a_year_matches_pandas_resample():
    """A year in one call against an independent computation (pandas' resample)."""
    rng = np.random.default_rng(1)
    minutes = np.sort(rng.choice(366 * 1440, size=480_000, replace=False))
    values = rng.weibull(2.0, size=len(minutes)) * 8
    values[rng.random(len(minutes)) < 0.05] = np.nan
    raw = frame(minutes.tolist(), x=values)
    out = stats_of(raw, 366 * 1440)
    assert len(out) == 366 * 144

    grouped = raw.set_index("timestamp")["x"].resample("10min", origin="epoch")
    expected = pd.DataFrame(
        {
            "count": grouped.count(),
            "mean": grouped.mean(),
            "min": grouped.min(),
            "max": grouped.max(),
            "std": grouped.std(ddof=1),
        }
    ).reindex(pd.DatetimeIndex(out["timestamp"]))
    assert (out["count"].to_numpy() == expected["count"].fillna(0).to_numpy()).all()
    for column, tolerance in (("mean", 1e-12), ("min", 0), ("max", 0), ("std", 1e-9)):
        np.testing.assert_allclose(
            out[column].to_numpy(), expected[column].to_numpy(), rtol=tolerance, atol=tolerance
        )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=-5, max_value=65),
            st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6)),
        ),
        max_size=40,
    )
)
def test_any_readings_match_a_plain_python_computation(readings):
    """Arbitrary minutes (some outside the hour, duplicates, NULLs) against a naive loop."""
    raw = frame([m for m, _ in readings], x=[np.nan if v is None else v for _, v in readings])
    out = stats_of(raw, 60)
    assert len(out) == 6
    for i, row in out.iterrows():
        samples = [v for m, v in readings if v is not None and 10 * i <= m < 10 * (i + 1)]
        assert row["count"] == len(samples)
        if samples:
            assert row["min"] == min(samples) and row["max"] == max(samples)
            assert row["mean"] == pytest.approx(statistics.fmean(samples), rel=1e-12, abs=1e-9)
        else:
            assert np.isnan(row["mean"]) and np.isnan(row["min"])
        if len(samples) >= 2:
            assert row["std"] == pytest.approx(statistics.stdev(samples), rel=1e-9, abs=1e-6)
        else:
            assert np.isnan(row["std"])


def test_naive_object_and_empty_timestamps_are_read_as_utc():
    naive = pd.DataFrame({"timestamp": pd.to_datetime(["2024-01-01 00:05"]), "x": [2.0]})
    assert stats_of(naive, 10)["count"].tolist() == [1]
    untyped = pd.DataFrame(
        {"timestamp": pd.Series([], dtype=object), "x": pd.Series([], dtype=float)}
    )
    assert stats_of(untyped, 10)["count"].tolist() == [0]
