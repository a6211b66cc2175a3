"""Static checks of the chapters: conventions that strict nbval and the book rely on."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MARKERS = {"NBVAL_IGNORE_OUTPUT", "NBVAL_CHECK_OUTPUT", "NBVAL_RAISES_EXCEPTION", "NBVAL_SKIP"}


def _code_cells(path):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_markers_are_recognised(path):
    # nbval 0.11 only honours a marker when the whole comment is the marker: "# NBVAL_IGNORE_OUTPUT".
    # "# NBVAL_IGNORE_OUTPUT (reason)" is silently ignored, and the cell's output is then compared.
    for i, cell in enumerate(_code_cells(path)):
        for line in "".join(cell["source"]).splitlines():
            if "NBVAL_" in line and line.strip().startswith("#"):
                comment = line.strip().lstrip("#").strip()
                assert comment in MARKERS, f"{path.name} code cell {i}: {line.strip()!r} is not a bare nbval marker"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_chapter_conventions(path):
    nb = json.loads(path.read_text())
    code = _code_cells(path)
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code), "no parameters cell"
    params = next(c for c in code if "parameters" in c.get("metadata", {}).get("tags", []))
    assert "SNNEDU_FULL" in "".join(params["source"]), "the parameters cell must read SNNEDU_FULL"
    assert any(c.get("outputs") for c in code), "committed without outputs"
    first = "".join(nb["cells"][0]["source"])
    assert f"colab.research.google.com/github/snnedu/snnedu/blob/main/notebooks/{path.name}" in first
    for c in code:
        src = "".join(c["source"])
        assert not re.search(r"^class \w+\(.*Module\)", src, re.M), "notebooks must not define nn.Module classes"
        assert "image/svg+xml" not in json.dumps(c.get("outputs", [])), "SVG outputs carry a date"
        assert "MPLBACKEND" not in src
