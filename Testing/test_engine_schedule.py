"""The order in which the engine queues its scans and registrations, warm-up included.

Scans are read one at a time (``_Run._load``); a registration queued before the scans of the
next pair would leave a worker waiting for a read while the other worker registers. Both the
tracking call and the warm-up of an open study (the Slicer panel's path) queue each pair's
registration after the next pair's scans.
"""

from __future__ import annotations

import pytest

from LinGuinELib.config import TrackingConfig
from LinGuinELib.propagation.engine import _Run
from LinGuinELib.session import StudySession
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.synthetic import make_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return load_manifest(make_study(tmp_path_factory.mktemp("sched") / "S", n_scans=4, n_lesions=1, seed=0,
                                    shape_zyx=(40, 80, 80), spacing=(2.5, 2.5, 3.0)))


def queued(run: _Run) -> list[str]:
    """Run ``run``'s reads and registrations as they are submitted (no pool) and log their order."""
    log: list[str] = []
    load, register = run._load, run._register

    def logged_load(scan_id):
        log.append(f"read {scan_id}")
        return load(scan_id)

    def logged_register(source, target):
        log.append("register")
        return register(source, target)

    run._load, run._register = logged_load, logged_register
    return log


def check_reads_ahead(log: list[str], pairs: list[tuple[str, str]]) -> None:
    registered = 0
    for k, entry in enumerate(log):
        if entry == "register":
            ahead = pairs[registered] + (pairs[registered + 1] if registered + 1 < len(pairs) else ())
            assert {f"read {s}" for s in ahead} <= set(log[:k]), (registered, log)
            registered += 1
    assert registered == len(pairs)


@pytest.mark.parametrize("mode", ["direct", "chain"])
def test_warm_up_reads_the_next_pair_before_registering(study, mode):
    session = StudySession(study, TrackingConfig(mode=mode), workers=0)
    pairs = session.warm_pairs()
    assert len(pairs) == (3 if mode == "direct" else 6)
    run = _Run(study, session.config, workers=0)
    try:
        log = queued(run)
        run.warm(pairs)
    finally:
        run.close()
    check_reads_ahead(log, pairs)


def test_warm_pairs_come_in_the_order_tracking_needs_them(study):
    """Chain mode warms every neighbouring pair: nearest steps first (depth), then by target."""
    ids = [s.id for s in study.scans]
    pairs = StudySession(study, TrackingConfig(mode="chain"), workers=0).warm_pairs()
    assert pairs == sorted(pairs, key=lambda p: ids.index(p[1]))  # all depth 1
    assert set(pairs) == {(a, b) for a, b in zip(ids, ids[1:])} | {(b, a) for a, b in zip(ids, ids[1:])}
