"""The long-lived study worker (``python -m LinGuinELib.worker``), as a real child process with the
real classical backends: it warms the study's pairs, tracks one lesion then a second on the same
registrations, gives what a fresh ``track`` gives, and survives bad input."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from test_parallel_session import SMALL, assert_same

from LinGuinELib.config import TrackingConfig
from LinGuinELib.propagation.engine import track
from LinGuinELib.study.manifest import load_manifest
from LinGuinELib.synthetic import make_study

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return load_manifest(make_study(tmp_path_factory.mktemp("wrk") / "S", n_scans=4, n_lesions=2, seed=0,
                                    prompt_scan=1, **SMALL))


def lesion_record(lesion) -> dict:
    return {"id": lesion.id, "scan": lesion.scan_id, "points_lps": lesion.points_lps.tolist()}


class WorkerProcess:
    """The worker behind pipes; ``ask`` sends a command and returns the answers up to its last one."""

    def __init__(self, folder: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.folder = folder
        self.process = subprocess.Popen([sys.executable, "-m", "LinGuinELib.worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=open(folder / "worker.log", "wb"),
                                        text=True, env=env, cwd=str(folder))
        self.next_id = 0

    def send(self, command: dict) -> int:
        self.next_id += 1
        self.process.stdin.write(json.dumps({**command, "id": self.next_id}) + "\n")
        self.process.stdin.flush()
        return self.next_id

    def until(self, ident: int, stages: set[str]) -> list[dict]:
        answers = []
        for line in self.process.stdout:
            answers.append(json.loads(line))
            if answers[-1].get("id") == ident and answers[-1]["stage"] in stages:
                return answers
        raise AssertionError(f"the worker stopped: {(self.folder / 'worker.log').read_text()[-2000:]}")

    def ask(self, command: dict, stages: set[str]) -> list[dict]:
        return self.until(self.send(command), stages)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc) -> None:
        """A test that failed half-way leaves no worker behind."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def write_spec(folder: Path, study, config: TrackingConfig) -> None:
    spec = {"patient_id": study.patient_id, "lesions": [], "config": config.to_dict(), "plugins": [],
            "scans": [{"id": s.id, "image": str(s.path), "date": s.date.isoformat() if s.date else None,
                       "timepoint": s.timepoint} for s in study.scans]}
    (folder / "study.json").write_text(json.dumps(spec))


def test_worker_adds_lesions_on_warm_pairs_as_a_fresh_run_would(study, tmp_path):
    first, second = study.lesions
    config = TrackingConfig()
    write_spec(tmp_path, study, config)
    with WorkerProcess(tmp_path) as worker:
        opened = worker.ask({"cmd": "open", "workdir": str(tmp_path), "warm_from": [first.scan_id]},
                            {"opened", "error"})
        assert opened[-1] == {"id": 1, "stage": "opened", "pairs": 3}
        warm = worker.until(1, {"warm"})[-1]
        assert warm["register_calls"] == 3  # registered before any lesion arrived
        one = worker.ask({"cmd": "track", "lesions": [lesion_record(first)]}, {"result", "error"})
        assert one[-1]["stage"] == "result", one[-1]
        assert one[-1]["register_calls"] == 3 and one[-1]["reused"] == []
        assert {a["stage"] for a in one[:-1]} >= {"segment", "done"} and all(a["id"] == 2 for a in one)
        # The panel sends every lesion again: the first is reused as it was, only the second is tracked.
        two = worker.ask({"cmd": "track", "lesions": [lesion_record(first), lesion_record(second)]},
                         {"result", "error"})
        assert two[-1]["stage"] == "result", two[-1]
        assert two[-1]["register_calls"] == 3, "the second lesion registered its pairs again"
        assert two[-1]["reused"] == [first.id]
        assert sum(a["stage"] == "segment" for a in two) == len(study.scans)  # one lesion's work only
        with open(tmp_path / two[-1]["path"], "rb") as f:
            result = pickle.load(f)
        assert [les.id for les in result.study.lesions] == [first.id, second.id]
        assert_same(result, track(study, config))
        # Bad input: one error line, and the study stays open.
        bad = worker.ask({"cmd": "track", "lesions": [{**lesion_record(first), "scan": "nope"}]},
                         {"result", "error"})
        assert bad[-1]["stage"] == "error" and bad[-1]["input"] and "nope" in bad[-1]["message"]
        assert worker.ask({"cmd": "fly"}, {"error"})[-1]["input"]
        again = worker.ask({"cmd": "track", "lesions": [lesion_record(second)]}, {"result", "error"})
        assert again[-1]["stage"] == "result" and again[-1]["reused"] == [second.id]
        assert worker.ask({"cmd": "close"}, {"closed"})
        assert worker.process.wait(30) == 0


def test_worker_exits_when_its_parent_closes_the_pipe(study, tmp_path):
    write_spec(tmp_path, study, TrackingConfig())
    with WorkerProcess(tmp_path) as worker:
        worker.ask({"cmd": "open", "workdir": str(tmp_path)}, {"opened"})
        worker.process.stdin.close()  # the parent has gone (Slicer closed or crashed)
        assert worker.process.wait(60) == 0


def test_worker_takes_other_settings_redoing_only_what_they_feed(study, tmp_path):
    """A segmentation-only change keeps the registered pairs (counted); a registration change
    registers again; the results equal a fresh run with the new settings."""
    write_spec(tmp_path, study, TrackingConfig())
    records = [lesion_record(les) for les in study.lesions]
    with WorkerProcess(tmp_path) as worker:
        worker.ask({"cmd": "open", "workdir": str(tmp_path), "warm_from": [study.lesions[0].scan_id]}, {"opened"})
        assert worker.until(1, {"warm"})[-1]["register_calls"] == 3
        assert worker.ask({"cmd": "track", "lesions": records[:1]}, {"result", "error"})[-1]["stage"] == "result"
        boosted = TrackingConfig(boost=True, search_radius_mm=6.0)
        configured = worker.ask({"cmd": "configure", "config": boosted.to_dict()}, {"configured", "error"})[-1]
        assert configured == {"id": 3, "stage": "configured", "redone": "segmentation", "register_calls": 3}
        answer = worker.ask({"cmd": "track", "lesions": records}, {"result", "error"})[-1]
        assert answer["stage"] == "result" and answer["reused"] == [], answer
        assert answer["register_calls"] == 3, "a segmentation-only change registered the pairs again"
        with open(tmp_path / answer["path"], "rb") as f:
            assert_same(pickle.load(f), track(study, boosted))
        other = TrackingConfig(registration_options={"local_box_mm": 32.0})
        configured = worker.ask({"cmd": "configure", "config": other.to_dict()}, {"configured", "error"})[-1]
        assert configured["redone"] == "registration"
        assert worker.until(configured["id"], {"warm"})[-1]["register_calls"] == 3  # the new backend's own
        answer = worker.ask({"cmd": "track", "lesions": records}, {"result", "error"})[-1]
        assert answer["stage"] == "result" and answer["register_calls"] == 3, answer
        with open(tmp_path / answer["path"], "rb") as f:
            assert_same(pickle.load(f), track(study, other))
        bad = worker.ask({"cmd": "configure", "config": {"boost": "yes"}}, {"configured", "error"})[-1]
        assert bad["stage"] == "error" and bad["input"] and "boost" in bad["message"]
        assert worker.ask({"cmd": "close"}, {"closed"})
        assert worker.process.wait(30) == 0
