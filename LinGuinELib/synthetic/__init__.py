"""Synthetic longitudinal CT studies with known truth (tests, demo, benchmarks)."""

from .deform import (
    bake,
    compose,
    growth_warp,
    jacobian_determinant,
    pull_points,
    push_points,
    random_pose,
    random_smooth_field,
    regrid,
    resample_image,
    resample_label,
    slice_average,
    slice_blur,
)
from .from_ct import make_study_from_ct, select_lesions
from .kinds import ATTACHMENTS, DENSITIES, Case, LesionKind, make_kind_study, render_case
from .manifest import SynthLesion, lesion_centre_zyx, synthesize_study, write_manifest
from .phantom import (
    REALISTIC_SHAPE_ZYX,
    REALISTIC_SPACING_XYZ,
    SMALL_SHAPE_ZYX,
    SMALL_SPACING_XYZ,
    make_study,
    volume_schedule,
)

__all__ = [
    "ATTACHMENTS", "DENSITIES", "Case", "LesionKind", "make_kind_study", "render_case", "slice_average",
    "REALISTIC_SHAPE_ZYX", "REALISTIC_SPACING_XYZ", "SMALL_SHAPE_ZYX", "SMALL_SPACING_XYZ",
    "SynthLesion", "bake", "compose", "growth_warp", "jacobian_determinant", "lesion_centre_zyx",
    "make_study", "make_study_from_ct", "pull_points", "push_points", "random_pose", "random_smooth_field", "regrid",
    "resample_image", "resample_label", "select_lesions", "slice_blur", "synthesize_study", "volume_schedule",
    "write_manifest",
]
