"""trajectory.png: drawn without matplotlib, every lesion's line and the prompt's star on it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from LinGuinELib.outputs.colors import lesion_color
from LinGuinELib.outputs.plot import HEIGHT, WIDTH, nice_ticks, plot_trajectory

ROOT = Path(__file__).resolve().parents[1]


def _rows(days: bool) -> list[dict]:
    volumes = {"L1": [4.8, 8.0, None, 13.1], "Läsion 2": [6.8, 4.5, 4.3, 0.0]}
    prompts = {"L1": 0, "Läsion 2": 1}
    return [{"lesion": lesion, "scan": f"T{k}", "days_from_first": [0, 49, 140, 182][k] if days else None,
             "volume_ml": v, "status": "prompt" if k == prompts[lesion] else "found"}
            for lesion, vols in volumes.items() for k, v in enumerate(vols)]


def _pixels_of(png: Path, rgb: tuple[float, float, float]) -> int:
    arr = np.asarray(Image.open(png).convert("RGB")).astype(int)
    return int((np.abs(arr - np.round(255 * np.array(rgb))).sum(-1) <= 6).sum())


def test_chart_has_each_lesion_in_its_colour(tmp_path):
    for days in (True, False):
        png = tmp_path / f"t{days}.png"
        plot_trajectory(_rows(days), ["L1", "Läsion 2"], png, title="P: lesion volume over time")
        img = Image.open(png)
        assert img.format == "PNG" and img.size == (WIDTH, HEIGHT)
        for k in range(2):
            assert _pixels_of(png, lesion_color(k)) > 300, (days, k)  # a line, dots, a star
        assert _pixels_of(png, lesion_color(2)) == 0  # no third lesion drawn


def test_empty_and_single_point_charts_still_write_a_png(tmp_path):
    plot_trajectory([], [], tmp_path / "empty.png")
    plot_trajectory([{"lesion": "L", "scan": "T0", "days_from_first": 0, "volume_ml": 0.0, "status": "prompt"}],
                    ["L"], tmp_path / "one.png")
    assert Image.open(tmp_path / "empty.png").size == Image.open(tmp_path / "one.png").size == (WIDTH, HEIGHT)


def test_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 13.1) == [0, 2.5, 5.0, 7.5, 10.0, 12.5]
    assert nice_ticks(-9.1, 191.1) == [0, 50, 100, 150]
    assert nice_ticks(3.0, 3.0) == [2.6, 2.8, 3.0, 3.2, 3.4]  # a single value: half a unit each side


def test_writing_the_outputs_imports_no_matplotlib():
    """Importing matplotlib cost 0.5-0.9 s of every run: the writer must not need it."""
    code = ("import sys\nfrom LinGuinELib.outputs import writer\nfrom LinGuinELib.outputs.plot import plot_trajectory\n"
            "import tempfile, pathlib\n"
            "plot_trajectory([{'lesion': 'L', 'scan': 'T0', 'days_from_first': 0, 'volume_ml': 1.0, "
            "'status': 'prompt'}], ['L'], pathlib.Path(tempfile.mkdtemp()) / 'p.png')\n"
            "print(any(m.split('.')[0] == 'matplotlib' for m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "False"
