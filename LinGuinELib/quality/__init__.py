"""The quality flag: which (lesion, scan) results need a look, and why.

``reasons``: the one registry of review reasons; ``image_checks``: per-scan checks of a segment
against its own image; ``growth``: plausibility of the volume trajectory; ``match``: whether a
segment found on a follow-up can be the lesion seen on the prompt scan (else ``not_found``);
``beyond``: whether a kept one reaches beyond where the lesion could have grown (a vessel taken in).
"""

from .growth import assess_volumes
from .image_checks import scan_checks
from .reasons import REASON_TEXT, Finding, Reason, codes, details

__all__ = ["REASON_TEXT", "Finding", "Reason", "assess_volumes", "codes", "details", "scan_checks"]
