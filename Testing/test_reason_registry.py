"""Every review reason is written once (``quality.reasons``) and reaches its readers: a sentence
for the tooltip, the report and ``review_details``, and a row of the README's table of reasons,
which is where a user looks a code up."""

from pathlib import Path

from LinGuinELib.quality import REASON_TEXT, Finding, Reason

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_reason_has_its_sentence():
    assert set(REASON_TEXT) == set(Reason)
    assert all(Finding(r).text.strip() for r in Reason)


def test_every_reason_has_a_row_in_the_readme_table():
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    first_cells = " ".join(row.split("|")[1] for row in rows)
    missing = [r.value for r in Reason if f"`{r.value}`" not in first_cells]
    assert not missing, missing
