"""Other settings on an open study: each option declares the first stage it feeds, and a session
redoes only that stage and the later ones (real classical backends on a small generated study):
a segmentation-only change keeps the scans and registered pairs, a registration change keeps the
scans; either way the results equal a fresh run with the new settings."""

import dataclasses

import pytest
from test_parallel_session import SMALL, assert_same

from LinGuinELib.config import STAGES, TrackingConfig, first_changed_stage, option_specs
from LinGuinELib.propagation.engine import track
from LinGuinELib.session import StudySession
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.synthetic import make_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return load_manifest(make_study(tmp_path_factory.mktemp("cfg") / "S", n_scans=4, n_lesions=2, seed=0,
                                    prompt_scan=1, **SMALL))


def test_every_option_declares_a_stage_and_a_change_names_the_first():
    assert {spec.stage for spec in option_specs()} <= set(STAGES)
    base = TrackingConfig()
    for change, stage in [({}, None), ({"boost": True}, "segmentation"), ({"search_radius_mm": 7.0}, "segmentation"),
                          ({"mode": "chain"}, "segmentation"), ({"segmentation_options": {"x": 1}}, "segmentation"),
                          ({"device": "cuda"}, "registration"), ({"registration_options": {"x": 1}}, "registration"),
                          ({"boost": True, "registration": "other"}, "registration")]:
        assert first_changed_stage(base, dataclasses.replace(base, **change)) == stage, change
    # a secret is compared too (another key may reach another model), though never written out
    keyed = dataclasses.replace(base, segmentation_options={"api_key": "a"})
    assert keyed.to_dict() == base.to_dict() and first_changed_stage(base, keyed) == "segmentation"


def test_segmentation_change_keeps_scans_and_pairs_and_equals_a_fresh_run(study):
    with StudySession(dataclasses.replace(study, lesions=[]), TrackingConfig(),
                      warm_from=[study.lesions[0].scan_id], workers=2) as session:
        session.track_lesions(study.lesions)
        assert session.register_calls == 3
        images = {s.id: session._run.image(s.id) for s in study.scans}
        assert session.reconfigure(TrackingConfig()) is None  # same settings: everything kept
        session.track_lesions(study.lesions)
        assert session.last_reused == sorted(les.id for les in study.lesions)

        boosted = TrackingConfig(boost=True, search_radius_mm=6.0)
        assert session.reconfigure(boosted) == "segmentation"
        result = session.track_lesions(study.lesions)
        assert session.last_reused == [], "a lesion kept its result from other segmentation settings"
        assert session.register_calls == 3, "a segmentation-only change registered the pairs again"
        assert all(session._run.image(sid) is image for sid, image in images.items())  # not read again
        assert_same(result, track(study, boosted, workers=0))

        chained = TrackingConfig(mode="chain")  # other pairs are needed, the registered ones still count
        assert session.reconfigure(chained) == "segmentation"
        result = session.track_lesions(study.lesions)
        assert 3 < session.register_calls <= 3 + len(session.warm_pairs())
        assert_same(result, track(study, chained, workers=0))


def test_registration_change_registers_again_on_the_loaded_scans(study):
    with StudySession(dataclasses.replace(study, lesions=[]), TrackingConfig(),
                      warm_from=[study.lesions[0].scan_id], workers=2) as session:
        session.track_lesions(study.lesions[:1])
        images = {s.id: session._run.image(s.id) for s in study.scans}
        other = TrackingConfig(registration_options={"local_box_mm": 32.0})
        assert session.reconfigure(other) == "registration"
        assert session.wait_warm(timeout=120)
        assert session.register_calls == 3  # the new backend's own registrations
        assert all(session._run.image(sid) is image for sid, image in images.items())  # not read again
        result = session.track_lesions(study.lesions)
        assert session.last_reused == [] and session.register_calls == 3
        assert_same(result, track(study, other, workers=0))
