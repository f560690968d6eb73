"""Parallel tracking equals serial tracking, and a study session adds a lesion without
registering its pairs again (real classical backends on a small generated study)."""

import dataclasses

import engine_fixtures as fx
import numpy as np
import pytest

from LinGuinELib.config import TrackingConfig
from LinGuinELib.errors import Cancelled
from LinGuinELib.measures.trajectory import trajectory_rows
from LinGuinELib.propagation.engine import track
from LinGuinELib.session import StudySession
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.synthetic import make_study

SMALL = {"shape_zyx": (48, 96, 96), "spacing": (2.5, 2.5, 3.0)}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return load_manifest(make_study(tmp_path_factory.mktemp("par") / "S", n_scans=4, n_lesions=2, seed=0,
                                    prompt_scan=1, **SMALL))


def assert_same(a, b):
    """Bit-identical per (lesion, scan): status, mask (box and voxels), points; same table."""
    assert a.results.keys() == b.results.keys()
    for key, ra in a.results.items():
        rb = b.results[key]
        assert (ra.status, ra.from_scan_id) == (rb.status, rb.from_scan_id), key
        assert ra.mask.offset_zyx == rb.mask.offset_zyx and np.array_equal(ra.mask.array, rb.mask.array), key
        for field in ("centre_lps", "propagated_point_lps"):
            va, vb = getattr(ra, field), getattr(rb, field)
            assert (va is None) == (vb is None), (key, field)
            if va is not None:
                np.testing.assert_array_equal(va, vb, err_msg=f"{key} {field}")
    assert trajectory_rows(a) == trajectory_rows(b)


@pytest.mark.parametrize("mode", ["direct", "chain"])
def test_parallel_run_is_bit_identical_to_serial(study, mode):
    config = TrackingConfig(mode=mode, boost=mode == "chain")
    serial = track(study, config, workers=0)
    parallel = track(study, config, workers=2)
    assert_same(serial, parallel)
    assert sum(r.status == "found" for r in parallel.results.values()) >= 3  # real masks compared
    assert parallel.walls["registration_or_segmentation"] <= parallel.walls["track"]


def test_session_adds_a_lesion_on_cached_pairs_as_a_fresh_run_would(study):
    first, second = study.lesions
    alone = dataclasses.replace(study, lesions=[first])
    with StudySession(alone, TrackingConfig(), workers=2) as session:
        result = session.track()
        assert session.register_calls == 3  # source -> each of the 3 other scans, once
        more = session.add_lesion(second)
        assert session.register_calls == 3  # the second lesion reused every pair
        assert [les.id for les in more.study.lesions] == [first.id, second.id]
        assert result.study.lesions == [first]
    assert_same(more, track(study, TrackingConfig(), workers=0))


def test_session_cancel_leaves_it_usable_and_counts_backend_calls(tmp_path):
    shifts = [(0, 0, 0), (3, -2, 4), (-4, 1, -2)]
    m = fx.write_ball_study(tmp_path / "s", [(5, 4), (6, 4), (7, 4)], shifts, [(-6.0, -6.0, -6.0), (7.0, 6.0, 2.0)])
    full = load_manifest(m)
    config = TrackingConfig(registration="test-shift", segmentation="test-threshold")
    fx.ShiftRegistration.calls.clear()
    session = StudySession(dataclasses.replace(full, lesions=[]), config, warm_from=["T0"]).start()
    try:
        assert session.warm_pairs() == [("T0", "T1"), ("T0", "T2")]
        with pytest.raises(Cancelled):
            session.add_lesion(full.lesions[0], cancel=lambda: True)
        assert session.lesions == []
        for lesion in full.lesions:
            result = session.add_lesion(lesion)
        assert sorted(fx.ShiftRegistration.calls) == [("T0", "T1"), ("T0", "T2")]  # warmed once, reused
        assert_same(result, track(full, config))
    finally:
        session.close()
    with pytest.raises(RuntimeError):
        session.add_lesion(full.lesions[0])


def test_chain_session_warms_neighbouring_pairs(study):
    session = StudySession(study, TrackingConfig(mode="chain"), workers=0)
    assert sorted(session.warm_pairs()) == [("T0", "T1"), ("T1", "T0"), ("T1", "T2"), ("T2", "T1"),
                                            ("T2", "T3"), ("T3", "T2")]
