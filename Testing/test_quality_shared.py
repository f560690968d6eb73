"""A registration that most lesions of a pair of scans doubt flags the others carried with it."""

from LinGuinELib.quality import Finding, Reason
from LinGuinELib.quality.shared_registration import shared_doubts

LOW = [Finding(Reason.LOW_REGISTRATION_CONFIDENCE, "confidence 0.31")]
OUT = [Finding(Reason.POINT_OUTSIDE_IMAGE)]


def _found(*rows):
    return [(lesion, source, scan, "outside_image" if findings is OUT else "found", findings)
            for lesion, source, scan, findings in rows]


def test_a_confident_lesion_is_flagged_when_most_others_of_its_pair_are_doubtful():
    results = _found(("L1", "T0", "T2", []), ("L2", "T0", "T2", LOW), ("L3", "T0", "T2", OUT), ("L4", "T0", "T2", []),
                     ("L1", "T0", "T1", []), ("L2", "T0", "T1", LOW), ("L3", "T0", "T1", []), ("L4", "T0", "T1", []))
    doubts = shared_doubts(results)
    # T2: two of L1's three others are doubtful; L4 likewise; the doubtful ones carry their own reason
    assert set(doubts) == {("L1", "T2"), ("L4", "T2")}
    assert doubts[("L1", "T2")].reason is Reason.REGISTRATION_DOUBTFUL and "L2, L3" in doubts[("L1", "T2")].detail
    # T1: one doubtful lesion of four is that lesion's own business


def test_no_flag_without_enough_others_or_across_different_pairs():
    assert shared_doubts(_found(("L1", "T0", "T1", []), ("L2", "T0", "T1", LOW))) == {}
    # chain mode: the same target scan reached from different scans is not the same registration
    results = _found(("L1", "T0", "T2", []), ("L2", "T1", "T2", LOW), ("L3", "T1", "T2", LOW))
    assert shared_doubts(results) == {}
    # the majority matters: two doubtful of five others is not most of them
    results = _found(("L1", "T0", "T1", []), *[(f"L{k}", "T0", "T1", LOW if k < 4 else []) for k in range(2, 7)])
    assert ("L1", "T1") not in shared_doubts(results)


def test_lesions_that_have_gone_do_not_doubt_the_registration():
    # a complete response: every other lesion not_found with its local confidence low (by construction)
    results = [("L1", "T0", "T4", "not_found", [])] + [(f"L{k}", "T0", "T4", "not_found", LOW) for k in (2, 3, 4)]
    assert shared_doubts(results) == {}
    # the same doubts on lesions that were found there do
    results = [("L1", "T0", "T4", "not_found", [])] + [(f"L{k}", "T0", "T4", "found", LOW) for k in (2, 3, 4)]
    assert ("L1", "T4") in shared_doubts(results)
