"""Arrow in and out of numpy without pyarrow's pandas bridge (extract's and load's helpers)."""

import subprocess
import sys

import numpy as np
import pyarrow as pa

from wind_pipeline.etl import arrays


def test_to_numpy_of_chunked_sliced_columns_with_nulls_and_units():
    stamps = pa.chunked_array(
        [
            pa.array([0, 60_000_000_000, 120_000_000_000], pa.timestamp("ns", "UTC")),
            pa.array([999, 180_000_000_000, 240_000_000_000], pa.timestamp("ns", "UTC")).slice(1),
        ]
    ).cast(pa.timestamp("us", "UTC"))
    speed = pa.chunked_array([pa.array([1.5, None, 3.0]), pa.array([9.9, None, 5.0]).slice(1)])
    power = pa.chunked_array([pa.array([1, 2, 3], pa.int32()), pa.array([4, 5], pa.int32())])
    assert arrays.to_numpy(stamps, np.int64).tolist() == [0, 60e6, 120e6, 180e6, 240e6]
    np.testing.assert_array_equal(arrays.to_numpy(speed, np.float64), [1.5, np.nan, 3, np.nan, 5])
    assert arrays.to_numpy(power, np.float64).dtype == np.float64
    assert arrays.to_numpy(pa.chunked_array([], pa.float64()), np.float64).shape == (0,)


def test_from_numpy_and_strings_round_trip():
    values = arrays.from_numpy(np.array([1.0, 2.0, 3.0]), np.array([True, False, True]))
    assert values.to_pylist() == [1.0, None, 3.0]
    names = arrays.strings(["WTG01", "WTG02"], np.array([1, 0, 1]))
    assert names.to_pylist() == ["WTG02", "WTG01", "WTG02"]
    assert arrays.timestamps(np.array([60_000_000])).type == pa.timestamp("us", tz="UTC")


def test_the_helpers_never_import_pandas():
    code = (
        "import sys, numpy as np, pyarrow as pa; from wind_pipeline.etl import arrays; "
        "t = pa.table({'v': arrays.from_numpy(np.arange(3.0), np.array([1, 0, 1], bool))}); "
        "arrays.to_numpy(t.column('v'), np.float64); arrays.strings(['a'], np.zeros(2, int)); "
        "print('pandas' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
