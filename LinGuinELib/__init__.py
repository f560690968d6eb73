"""LinGuinE core: longitudinal lesion tracking from one prompt, with no Slicer import.

The pipeline, one sub-package per stage:
study -> prompt -> registration -> propagation -> segmentation -> filtering -> measures -> outputs.
Coordinates inside the library are physical LPS millimetres (ITK/SimpleITK convention);
RAS appears only at the boundary (study manifest, Slicer, output tables).
"""

__version__ = "0.1.0"
