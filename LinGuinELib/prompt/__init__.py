"""The prompt stage: reduce a click or a mask to the lesion's centre point.

``mask_centre_lps`` and ``deepest_index_zyx`` (``prompt.centre``) are imported on first use, so
that reading a manifest (which checks prompts with ``prompt.masks``) does not import scipy.
"""

from typing import Any

__all__ = ["deepest_index_zyx", "mask_centre_lps"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import centre

        return getattr(centre, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
