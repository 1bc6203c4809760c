"""Arrow to numpy without pyarrow.compute: chunks, slices, NULLs and units come out right."""

import numpy as np
import pyarrow as pa

from wind_pipeline.etl.extract import readings_from_table


def test_chunked_sliced_table_with_nulls_and_nanoseconds():
    stamps = pa.chunked_array(
        [
            pa.array([0, 60_000_000_000, 120_000_000_000], pa.timestamp("ns", "UTC")),
            pa.array([999, 180_000_000_000, 240_000_000_000], pa.timestamp("ns", "UTC")).slice(1),
        ]
    )
    speed = pa.chunked_array([pa.array([1.5, None, 3.0]), pa.array([9.9, None, 5.0]).slice(1)])
    power = pa.chunked_array([pa.array([1, 2, 3], pa.int32()), pa.array([4, 5], pa.int32())])
    table = pa.table({"timestamp": stamps, "wind_speed": speed, "power": power})

    readings = readings_from_table(table, ["wind_speed", "power"])

    assert readings.timestamps_us.tolist() == [0, 60_000_000, 120_000_000, 180_000_000, 240_000_000]
    np.testing.assert_array_equal(readings.values["wind_speed"], [1.5, np.nan, 3.0, np.nan, 5.0])
    assert readings.values["power"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]  # ints are converted
    assert readings.values["power"].dtype == np.float64


def test_an_empty_table_gives_empty_arrays():
    table = pa.table(
        {"timestamp": pa.array([], pa.timestamp("us", "UTC")), "power": pa.array([], pa.float64())}
    )
    readings = readings_from_table(table, ["power"])
    assert len(readings) == 0 and readings.values["power"].dtype == np.float64
