import datetime as dt

import pytest

from LinGuinELib.errors import InputError
from LinGuinELib.study.model import Scan
from LinGuinELib.study.timepoints import days_from_first, label_key, sort_scans


def _ids(scans):
    return [s.id for s in scans]


def test_labels_sort_numerically_with_baseline_first_and_unscheduled_last():
    labels = ["week_10", "unscheduled", "week_2", "baseline", "retreatment_week_1", "screening"]
    scans = [Scan(id=lab, timepoint=lab) for lab in labels]
    assert _ids(sort_scans(scans)) == ["baseline", "screening", "week_2", "week_10",
                                       "retreatment_week_1", "unscheduled"]


def test_time_units_compare_in_days():
    scans = [Scan(id=lab, timepoint=lab) for lab in ["month_3", "week_8", "day_30", "year_1"]]
    assert _ids(sort_scans(scans)) == ["day_30", "week_8", "month_3", "year_1"]


def test_ordinal_flags_and_separators():
    scans = [Scan(id=lab, timepoint=lab) for lab in ["FU-2", "fu 10", "FU_1", "Baseline"]]
    assert _ids(sort_scans(scans)) == ["Baseline", "FU_1", "FU-2", "fu 10"]


def test_dates_win_over_labels():
    scans = [Scan(id="a", date=dt.date(2024, 5, 1), timepoint="baseline"),
             Scan(id="b", date=dt.date(2023, 1, 1), timepoint="week_4")]
    assert _ids(sort_scans(scans)) == ["b", "a"]
    assert days_from_first(sort_scans(scans)) == [0.0, 486.0]


def test_unorderable_label_is_an_error_naming_it():
    with pytest.raises(InputError, match="'follow-up late'"):
        sort_scans([Scan(id="a", timepoint="baseline"), Scan(id="b", timepoint="follow-up late")])


def test_mixed_time_and_ordinal_labels_are_rejected():
    with pytest.raises(InputError, match="mix"):
        sort_scans([Scan(id="a", timepoint="week_4"), Scan(id="b", timepoint="cycle_2")])


def test_days_from_labels_when_undated():
    scans = sort_scans([Scan(id=x, timepoint=x) for x in ["baseline", "week_12", "week_2"]])
    assert days_from_first(scans) == [0.0, 14.0, 84.0]


def test_label_key_groups():
    assert label_key("baseline").group == 0
    assert label_key("end of treatment").group == 3
    assert label_key("3").kind == "ordinal"
