"""The study stage: scans with timepoints, and lesion prompts."""

from .model import Lesion, Scan, Study

__all__ = ["Lesion", "Scan", "Study"]
