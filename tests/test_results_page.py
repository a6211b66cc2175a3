"""The book's Results page and API reference stay in step with the code and the committed files.

- tools/collect_results.py runs on the committed results/*.json + results/papers.yaml, and the
  committed table book/_generated/results_table.md is what it generates now;
- every results/*.json has the fields of run_config's result.json plus a date, and names a config;
- every config appears in the table, and the papers' numbers are labelled as the papers';
- every public name of snnedu and snnedu.data is documented on an API page (book/api/*.md).
"""
from __future__ import annotations

import datetime
import importlib
import importlib.util
import json
import re
import types
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
TABLE = ROOT / "book" / "_generated" / "results_table.md"


def _load_tool():
    spec = importlib.util.spec_from_file_location("collect_results", ROOT / "tools" / "collect_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cr = _load_tool()
RESULT_FILES = sorted(RESULTS.glob("*.json"))
CONFIG_NAMES = cr.config_names()


def _table_rows(text: str) -> dict:
    """``{config name: [cells]}`` of the generated table's body rows."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\| `([\w.-]+)` \|", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
    return rows


def test_there_are_committed_runs():
    assert RESULT_FILES, "results/ holds no run (results/*.json)"
    assert (RESULTS / "papers.yaml").is_file()


def test_generator_runs_on_committed_files_and_table_is_up_to_date():
    text = cr.generate()
    assert TABLE.is_file(), "book/_generated/results_table.md missing: run python tools/collect_results.py"
    assert TABLE.read_text() == text, "the committed results table is stale: run python tools/collect_results.py"
    assert cr.main(["--check"]) == 0


def test_check_mode_detects_a_stale_table(tmp_path):
    stale = tmp_path / "table.md"
    stale.write_text(cr.generate().replace("|---|", "|-|", 1))
    studies = tmp_path / "studies.md"
    args = ["--out", str(stale), "--studies-out", str(studies)]
    assert cr.main(["--check", *args]) == 1
    assert cr.main(args) == 0 and cr.main(["--check", *args]) == 0
    studies.write_text(studies.read_text().replace("±", "+-", 1))
    assert cr.main(["--check", *args]) == 1


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: p.stem)
def test_result_file_fields(path):
    r = json.loads(path.read_text())
    missing = [k for k in cr.REQUIRED_FIELDS if k not in r]
    assert not missing, f"{path.name} lacks {missing}"
    assert r["name"] == path.stem
    assert r["name"] in CONFIG_NAMES, f"{path.name}: no configs/*.yaml named {r['name']!r}"
    assert r["config"]["name"] == r["name"]
    datetime.date.fromisoformat(r["date"])
    for key in ("final_test_acc", "best_test_acc"):
        assert 0.0 <= r[key] <= 100.0, f"{path.name}: {key} is a percentage"
    assert isinstance(r["offline_standin"], bool)
    assert isinstance(r["data"], str) and r["data"], "a result must name its data"
    assert len(r["history"]) == r["epochs"] >= 1
    assert r["history"][-1]["val_acc"] == pytest.approx(r["final_test_acc"])
    # the config in the result is the committed config (same paper setting), up to the smoke-run overrides
    committed = yaml.safe_load(CONFIG_NAMES[r["name"]].read_text())
    assert r["config"]["model"]["arch"] == committed["model"]["arch"]
    assert r["config"]["model"]["neuron"] == committed["model"]["neuron"]
    assert r["config"]["data"]["dataset"] == committed["data"]["dataset"]


def test_every_config_is_in_the_table_with_its_run():
    rows = _table_rows(TABLE.read_text())
    assert set(rows) == set(CONFIG_NAMES)
    for path in RESULT_FILES:
        r = json.loads(path.read_text())
        cells = rows[r["name"]]
        assert cells[1] != "not run yet"
        assert cells[2] == f"{r['final_test_acc']:.2f}"  # the final epoch; never a best-over-epochs test number
        assert r["date"] in cells[3]
        kind = "offline stand-in" if r["offline_standin"] else "real data"
        assert kind in cells[1], "the data column must say whether the run used a stand-in"


def test_paper_numbers_are_labelled_as_the_papers():
    text = TABLE.read_text()
    header = next(line for line in text.splitlines() if line.startswith("| config |"))
    assert "paper's reported number (not snnedu's)" in header
    papers = cr.load_papers(RESULTS / "papers.yaml")
    rows = _table_rows(text)
    bib = (ROOT / "book" / "references.bib").read_text()
    for name, entry in papers.items():
        assert name in CONFIG_NAMES, f"papers.yaml: {name} is not a config name"
        cell = rows[name][4]
        assert cell.count("paper:") == len(entry["reported"])
        for rep in entry["reported"]:
            key = rep.get("paper", entry["paper"])
            assert f"{{cite:t}}`{key}`" in cell
            assert re.search(r"@\w+\{" + re.escape(key) + ",", bib), f"{key} is not in references.bib"
            if rep["value"] is not None:
                assert f"**{rep['value']:.2f}**" in cell
        # our accuracy cell never holds a paper's number by accident: it is exactly the final accuracy
        assert "paper" not in rows[name][2]


def test_generator_rejects_malformed_inputs(tmp_path):
    good = json.loads(RESULT_FILES[0].read_text())
    bad = dict(good)
    del bad["date"]
    (tmp_path / f"{good['name']}.json").write_text(json.dumps(bad))
    with pytest.raises(cr.ResultsError, match="date"):
        cr.load_results(tmp_path)
    (tmp_path / f"{good['name']}.json").write_text(json.dumps(dict(good, name="no_such_config")))
    with pytest.raises(cr.ResultsError, match="does not match"):
        cr.load_results(tmp_path)
    (tmp_path / f"{good['name']}.json").unlink()
    (tmp_path / "no_such_config.json").write_text(json.dumps(dict(good, name="no_such_config")))
    with pytest.raises(cr.ResultsError, match="unknown config"):
        cr.render(cr.load_results(tmp_path), {}, CONFIG_NAMES)
    papers = tmp_path / "papers.yaml"
    papers.write_text("plif_mnist: {dataset: MNIST, paper: fang2021plif, table: t, "
                      "reported: [{metric: acc, value: null}]}\n")
    with pytest.raises(cr.ResultsError, match="null value needs a 'note'"):
        cr.load_papers(papers)


# -- the API reference covers the public names -------------------------------------------------------
def _api_directives():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "book" / "api").glob("*.md")))
    modules = set(re.findall(r"^\.\. automodule:: ([\w.]+)\n((?:   :[\w-]+:.*\n)*)", text, re.M))
    with_members = {m for m, opts in modules if ":members:" in opts}
    return text, {m for m, _ in modules}, with_members


def _lists(module, name, obj) -> bool:
    """Does ``automodule:: module`` with ``:members:`` document ``obj``? (autodoc's rule: the names in
    ``__all__``; without ``__all__``, the public names defined in the module itself)."""
    if getattr(module, name, None) is not obj:
        return False
    if hasattr(module, "__all__"):
        return name in module.__all__
    return getattr(obj, "__module__", None) == module.__name__ and not name.startswith("_")


@pytest.mark.parametrize("package", ["snnedu", "snnedu.data"])
def test_api_pages_document_every_public_name(package):
    pkg = importlib.import_module(package)
    text, modules, with_members = _api_directives()
    missing = []
    for name in pkg.__all__:
        obj = getattr(pkg, name)
        if isinstance(obj, types.ModuleType):
            ok = obj.__name__ in modules
        elif getattr(obj, "__module__", None) and hasattr(obj, "__qualname__"):
            # an automodule with :members: lists it in its __all__ (where it is defined, or a package
            # that re-exports it), or an autoclass/autofunction names it
            ok = any(_lists(importlib.import_module(m), name, obj) for m in with_members) or \
                re.search(rf"\.\. auto\w+:: {re.escape(package)}\.{name}\b", text) is not None
        else:  # data: a py:data entry of its own
            ok = re.search(rf"\.\. py:data:: {name}\n", text) is not None
        if not ok:
            missing.append(name)
    assert not missing, f"not documented on any book/api page: {missing}"
