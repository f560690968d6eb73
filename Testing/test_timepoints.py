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


def test_two_scans_of_one_day_are_kept_in_order_and_said(caplog):
    """Repeat scans of one day (``study`` writes them for two imaging studies on a date) are valid;
    a date copied onto the wrong row looks the same, so the run says so, naming both scans."""
    scans = [Scan(id="T0", date=dt.date(2023, 1, 9)), Scan(id="T2", date=dt.date(2023, 2, 27)),
             Scan(id="T1", date=dt.date(2023, 2, 27)), Scan(id="T3", date=dt.date(2023, 7, 10))]
    with caplog.at_level("WARNING", logger="LinGuinELib.study.timepoints"):
        ordered = sort_scans(scans)
    assert _ids(ordered) == ["T0", "T2", "T1", "T3"] and days_from_first(ordered)[1:3] == [49.0, 49.0]
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "'T2' and 'T1' share the date 2023-02-27" in said[0], said
    caplog.clear()
    with caplog.at_level("WARNING", logger="LinGuinELib.study.timepoints"):
        sort_scans([scans[0], scans[1], scans[3]])
    assert not caplog.records
