"""What the classical segmenter can say about its own result: ``last_diagnostics``.

One dict per positive point; with several points, ``points`` holds each point's dict and the top
level the worst of them. Keys:

- ``empty`` (bool) and ``reason`` (str or None): why nothing was returned;
- ``volume_ml``; ``in_lung``: aerated lung found around the prompt; ``lesion_scale_mm``;
- ``roi_half_mm``: the final ROI half-size; ``roi_border_contact``: largest fraction of a ROI
  face (not the image border) the mask covers (> 0: the lesion may continue beyond);
- ``envelope_fraction``: fraction of the mask inside the lung envelope (NaN: no lung);
  ``envelope_cut_fraction``: fraction of the thresholded region the envelope removed;
- ``edge_contrast_hu``, ``contrast_to_noise``, ``threshold_hu``: the final levels;
- ``leak_retry``: a fallback was needed (ROI grown after a leak, or the envelope dropped);
- ``attached_as_thick``: a structure about as thick as the result was cut from it (a vessel):
  the shape cannot tell which of the two is the lesion;
- ``halo_left_out``: a bright result wrapped by a shell of intermediate density (a ground-glass
  halo?) that it did not take: the lesion may be the larger part-solid whole;
- ``end_slice_on_wall``: share of the volume in end slices that rest on a wall along thick
  slices (the dome), settled by their partial volume over the wall's mix (0: none; defined in
  :func:`.end_slices.settle_end_slices`);
- ``read_beside_slice``: the click's slice was a wall's average with the lung, and the lesion
  was read from the slice beside it (:func:`.end_slices.is_slice_of_wall`);
- ``read_off_wall``: the prompt's region lay in the wall (nothing lesion-like there, or mostly
  outside the lung envelope), and the lesion was read from the densest point well inside the
  envelope near it (a propagated point carried a few mm into the wall);
- ``warnings``: codes among ``empty``, ``roi_border``, ``outside_envelope``, ``low_contrast``,
  ``leak_retry``, ``halo_left_out``: what the segmenter itself cannot vouch for.
"""

from __future__ import annotations

import math

MIN_ENVELOPE_FRACTION = 0.5  # a lung lesion's region must lie at least this much in the envelope
LOW_CNR = 3.0  # edge contrast / noise below this: the edge is not trustworthy
# what happened while segmenting (bool keys); several points: any of them
EVENTS = ("leak_retry", "attached_as_thick", "halo_left_out", "read_beside_slice", "read_off_wall")


def empty_diagnostics() -> dict:
    """A point's diagnostics before anything is found: every key present, so readers need no defaults."""
    nan = float("nan")
    return {"empty": True, "reason": None, "volume_ml": 0.0, "in_lung": False, "lesion_scale_mm": nan,
            "roi_half_mm": nan, "roi_border_contact": 0.0, "envelope_fraction": nan,
            "envelope_cut_fraction": nan, "edge_contrast_hu": nan, "contrast_to_noise": nan,
            "threshold_hu": nan, "end_slice_on_wall": 0.0, **dict.fromkeys(EVENTS, False), "warnings": []}


def warnings_of(d: dict) -> list[str]:
    """The codes of what the segmenter cannot vouch for in one point's result ``d``."""
    out = []
    if d["empty"]:
        out.append("empty")
    if d["roi_border_contact"] > 0:
        out.append("roi_border")
    if d["envelope_fraction"] < MIN_ENVELOPE_FRACTION:  # NaN compares False: no envelope
        out.append("outside_envelope")
    if d["contrast_to_noise"] < LOW_CNR:
        out.append("low_contrast")
    if d["leak_retry"]:
        out.append("leak_retry")
    if d["halo_left_out"]:
        out.append("halo_left_out")
    return out


def summary(points: list[dict], volume_ml: float) -> dict:
    """One point's diagnostics, or the worst of several (and each in ``points``)."""
    if len(points) == 1:
        return {**points[0], "volume_ml": round(volume_ml, 4)}
    if not points:
        return {**empty_diagnostics(), "reason": "no positive point", "warnings": ["empty"]}

    def worst(key, fn):
        vals = [p[key] for p in points if not (isinstance(p[key], float) and math.isnan(p[key]))]
        return fn(vals) if vals else float("nan")

    flags = {key: any(p[key] for p in points) for key in EVENTS}
    return {**points[0], **flags, "empty": volume_ml == 0.0, "volume_ml": round(volume_ml, 4),
            "roi_border_contact": worst("roi_border_contact", max),
            "envelope_fraction": worst("envelope_fraction", min),
            "contrast_to_noise": worst("contrast_to_noise", min),
            "edge_contrast_hu": worst("edge_contrast_hu", min),
            "end_slice_on_wall": max(p["end_slice_on_wall"] for p in points),
            "warnings": sorted({w for p in points for w in p["warnings"]}), "points": points}
