"""The source's data generator behind ``connector-api seed``: a wind farm's one-minute readings.

One module per idea: ``farm`` (machines, layout, power curve, wakes), ``weather`` (the farm's
wind field and temperature), ``directions`` (each turbine's vane and yawing nacelle), ``model``
(a block of days x the fleet, fault-free), ``faults`` (``--faults`` and its ground truth),
``tables`` (Arrow rows and CSV), ``readings`` (a range block by block) and ``seeding`` (the
transaction that writes it). The names below are the package's public face.
"""

from connector_api.generator.farm import (
    MAX_DEFICIT,
    Turbine,
    farm,
    power_curve,
    wake_deficit,
    yaw_misalignment,
)
from connector_api.generator.faults import FAULTS
from connector_api.generator.model import POWER_NOISE, RESTART_BELOW, VARIABLES
from connector_api.generator.readings import fault_log, generate, generate_blocks
from connector_api.generator.seeding import COPY_SQL, SeedReport, resolve_range, write
from connector_api.generator.tables import COLUMNS, to_csv, write_faults_csv
from connector_api.generator.weather import farm_wind

__all__ = [
    "COLUMNS",
    "COPY_SQL",
    "FAULTS",
    "MAX_DEFICIT",
    "POWER_NOISE",
    "RESTART_BELOW",
    "VARIABLES",
    "SeedReport",
    "Turbine",
    "farm",
    "farm_wind",
    "fault_log",
    "generate",
    "generate_blocks",
    "power_curve",
    "resolve_range",
    "to_csv",
    "wake_deficit",
    "write",
    "write_faults_csv",
    "yaw_misalignment",
]
