"""Moved: the defaults live in ``signals`` and the environment readers in ``wind_pipeline.cli``.

Kept only until ``defs/`` imports ``DEFAULT_VARIABLES`` from ``wind_pipeline.etl.signals``.
"""

from wind_pipeline.etl.signals import DEFAULT_VARIABLES

__all__ = ["DEFAULT_VARIABLES"]
