"""`linguine report`: one self-contained HTML file from batch outputs, with the analyses."""

from __future__ import annotations

import base64
import json
import re

import pytest
from test_batch import TRACK_ARGS, write_cube_study

from LinGuinELib.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same two studies tracked from the earliest, middle and latest scan."""
    tmp = tmp_path_factory.mktemp("report")
    ds = tmp / "ds"
    write_cube_study(ds / "p1", "P1")
    write_cube_study(ds / "p2", "P2", truth_offset_x=2)
    write_cube_study(ds / "p3", "P3", broken=True)
    outs = {}
    for source in ("earliest", "middle", "latest"):
        out = tmp / source
        main(["-q", "batch", str(ds), "--out", str(out), "--source", source, *TRACK_ARGS])
        outs[source] = out
    return outs


def _assert_self_contained(text: str) -> None:
    assert "<script" not in text.lower()
    # every src/href is inline data, never a file or a URL
    for ref in re.findall(r'(?:src|href)="([^"]*)"', text):
        assert ref.startswith("data:image/png;base64,")


def test_single_run_report(runs, capsys):
    out = runs["earliest"]
    assert main(["report", str(out)]) == 0  # evaluates on the fly (no evaluation.csv yet)
    text = (out / "report.html").read_text()
    _assert_self_contained(text)
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(imgs) >= 2  # Dice box plot and temporal degradation
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in imgs)
    assert "Temporal degradation" in text and "P3" in text and "nope.mha" in text  # failure shown
    assert "Needs review" in text and "Against the truth" in text  # the quality flag, scored
    assert (out / "evaluation.csv").is_file()
    analyses = json.loads((out / "report_analyses.json").read_text())
    (summary,) = analyses["summary"]
    assert summary["pairs"] == 12 and summary["tracking_success_rate"] == 1.0


def test_three_sources_give_friedman_and_pairwise_tests(runs, tmp_path):
    html_path = tmp_path / "all.html"
    code = main(["-q", "report", *(str(runs[s]) for s in ("earliest", "middle", "latest")),
                 "--html", str(html_path)])
    assert code == 0
    text = html_path.read_text()
    _assert_self_contained(text)
    assert "Direction agnosticism" in text and "Friedman" in text and "Wilcoxon" in text
    analyses = json.loads((tmp_path / "all_analyses.json").read_text())
    assert analyses["direction"]["sources"] == ["earliest", "middle", "latest"]
    assert len(analyses["comparisons"]) == 3
    names = {s["configuration"] for s in analyses["summary"]}
    assert names == {f"test-shift+test-threshold/direct@{s}" for s in ("earliest", "middle", "latest")}


def test_report_on_missing_folder_is_input_error(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a folder" in capsys.readouterr().err
