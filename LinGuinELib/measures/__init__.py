"""The measures stage: lesion size per scan and its change over time."""

from .response import trajectory_changes
from .shape import axial_diameters, lesion_measures
from .trajectory import TRAJECTORY_COLUMNS, trajectory_rows

__all__ = ["TRAJECTORY_COLUMNS", "axial_diameters", "lesion_measures", "trajectory_changes",
           "trajectory_rows"]
