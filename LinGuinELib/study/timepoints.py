"""Order scans in time: by acquisition date when every scan has one, else by timepoint label.

Labels understood (case-insensitive, separators `_`, `-`, space or none):
- ``baseline``, ``screening``, ``pre``/``pretreatment`` (first, in that order);
- a flag followed by a number: time units ``day``/``d``, ``week``/``wk``/``w``, ``month``/``m``,
  ``year``/``y`` (compared in days, so ``week_10`` comes after ``week_2`` and ``month_3`` after
  ``week_8``) and ordinal flags ``cycle``/``c``, ``fu``/``follow_up``/``followup``, ``exam``, ``visit``,
  ``timepoint``/``tp``, ``scan``, ``t``, ``v`` or a bare number (compared by number);
- the same with a re-treatment prefix (``retreatment_``, ``re_treatment_``, ``rt_``): after the
  regular ones;
- ``unscheduled``, ``end_of_treatment``/``eot``, ``final`` (last, in manifest order);
- an ISO date (``2023-01-09``).
A label that fits none of these is an error naming it: a scan is never dropped silently.
Mixing time-unit and ordinal labels in one study is an error too (week 12 vs cycle 3 is unknowable).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass

from ..errors import InputError
from .model import Scan

log = logging.getLogger(__name__)

_UNIT_DAYS = {"day": 1, "d": 1, "week": 7, "wk": 7, "w": 7, "month": 30.4375, "m": 30.4375,
              "year": 365.25, "y": 365.25}
_ORDINAL = ("cycle", "c", "fu", "follow_up", "followup", "exam", "visit", "timepoint", "tp", "scan",
            "t", "v", "")
_FIRST = ("baseline", "screening", "pre", "pretreatment", "pre_treatment")
_LAST = ("unscheduled", "end_of_treatment", "eot", "final")
_RETREAT = re.compile(r"^(retreatment|re_treatment|retreat|rt)_?")
_NUMBERED = re.compile(r"^([a-z_]*?)_?(\d+(?:\.\d+)?)$")


@dataclass(frozen=True)
class LabelKey:
    group: int  # 0 first-of-study, 1 numbered, 2 re-treatment numbered, 3 last-of-study
    value: float  # days (time units) or number (ordinal flags)
    kind: str  # "time", "ordinal" or "fixed"


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def label_key(label: str) -> LabelKey:
    """Sort key of a timepoint label; raises InputError if it can't be ordered."""
    norm = re.sub(r"[\s\-]+", "_", label.strip().lower())
    if norm in _FIRST:
        return LabelKey(0, float(_FIRST.index(norm)), "fixed")
    if norm in _LAST:
        return LabelKey(3, 0.0, "fixed")
    group = 1
    retreat = _RETREAT.match(norm)
    if retreat and retreat.end() < len(norm):
        group, norm = 2, norm[retreat.end():]
    match = _NUMBERED.match(norm)
    if match:
        flag, number = match.group(1).strip("_"), float(match.group(2))
        if flag in _UNIT_DAYS:
            return LabelKey(group, number * _UNIT_DAYS[flag], "time")
        if flag in _ORDINAL:
            return LabelKey(group, number, "ordinal")
    raise InputError(f"timepoint '{label}' cannot be ordered (use a date or a label like week_12)")


def label_days(label: str | None) -> float | None:
    """Days since baseline implied by a label (``week_12`` -> 84), or None if it has no time unit."""
    if not label:
        return None
    try:
        key = label_key(label)
    except InputError:
        return None
    if key.kind == "time" and key.group == 1:
        return key.value
    if key.group == 0:
        return 0.0
    return None


def sort_scans(scans: list[Scan]) -> list[Scan]:
    """Scans earliest first. Stable: ties keep the manifest order (two scans of one day are repeat
    scans, 0 days apart; ``study`` writes them so, ordered by StudyTime), said in a warning since a
    date copied onto the wrong row looks the same."""
    if all(s.date is not None for s in scans):
        ordered = sorted(scans, key=lambda s: s.date)
        for a, b in zip(ordered, ordered[1:]):
            if a.date == b.date:
                log.warning("scans '%s' and '%s' share the date %s: taken as two scans of one day, in the "
                            "order given (0 days apart); if a date is wrong, correct it", a.id, b.id, a.date)
        return ordered
    if all(s.timepoint for s in scans):
        keys = {s.id: label_key(s.timepoint) for s in scans}
        kinds = {k.kind for k in keys.values() if k.kind != "fixed"}
        if len(kinds) > 1:
            labels = ", ".join(s.timepoint for s in scans)
            raise InputError(f"timepoints mix time units and ordinal numbers ({labels}): cannot order")
        return sorted(scans, key=lambda s: (keys[s.id].group, keys[s.id].value))
    undated = [s.id for s in scans if s.date is None and not s.timepoint]
    if undated:
        raise InputError(f"scan '{undated[0]}' has neither a date nor a timepoint")
    log.warning("some scans have only a date and others only a label: keeping the manifest order")
    for s in scans:
        if s.timepoint and s.date is None:
            label_key(s.timepoint)  # still reject labels that can't be ordered
    return list(scans)


def days_from_first(scans: list[Scan]) -> list[float | None]:
    """Days since the first scan: from dates when both are dated, else from time-unit labels."""
    first = scans[0]
    out: list[float | None] = []
    for s in scans:
        if s.date is not None and first.date is not None:
            out.append(float((s.date - first.date).days))
        else:
            a, b = label_days(first.timepoint), label_days(s.timepoint)
            out.append(b - a if a is not None and b is not None else None)
    return out
