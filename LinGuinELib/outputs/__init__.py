"""The outputs stage: labelmaps, Slicer segmentations, trajectory table and plot, run record.

Import the modules themselves (``outputs.writer``, ``outputs.safety``, ...): this package imports
none of them, so that checking OUT (``safety``) does not pull in the writers' dependencies.
"""
