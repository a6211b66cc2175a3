"""Collect snnedu's run results and the papers' reported numbers into the book's Results table.

    python tools/collect_results.py            # writes book/_generated/results_table.md and studies.md
    python tools/collect_results.py --check    # exit 1 if a committed table is out of date

The chapter studies (``studies/*.yaml`` run by ``python -m snnedu study``, results in
``results/studies/*.json``) become ``book/_generated/studies.md``, one section per chapter, through
:func:`snnedu.study.markdown_report`.

Inputs (all committed):

- ``results/NAME.json`` — one per run, the ``result.json`` that ``python -m snnedu train`` writes
  (:func:`snnedu.config.run_config`) plus a ``date`` field (ISO date of the run);
- ``results/papers.yaml`` — the numbers the papers report for each config's setting;
- ``configs/*.yaml`` — every config gets a row, run or not.

The output is a MyST Markdown fragment included by ``book/results.md``. It depends on nothing but
these files (no clock, no machine), so regenerating it from the same files gives the same bytes.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
PAPERS = RESULTS / "papers.yaml"
CONFIGS = ROOT / "configs"
OUT = ROOT / "book" / "_generated" / "results_table.md"
STUDIES = ROOT / "studies"
STUDY_RESULTS = RESULTS / "studies"
STUDIES_OUT = ROOT / "book" / "_generated" / "studies.md"

# The fields of run_config's result.json that the table needs, plus the date of the run.
REQUIRED_FIELDS = ("name", "source", "final_test_acc", "best_test_acc", "best_epoch", "epochs",
                   "epochs_configured", "max_batches_per_epoch", "device", "data", "offline_standin",
                   "machine", "torch", "history", "config", "date")
PAPER_FIELDS = ("dataset", "paper", "table", "reported")
PAPER_LABEL = "paper's reported number (not snnedu's)"


class ResultsError(ValueError):
    """A results file or papers.yaml is malformed (the message names the file and the field)."""


def _cell(text) -> str:
    """One Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def config_names(configs_dir: Path = CONFIGS) -> dict:
    """``{name: config file}`` for every ``configs/*.yaml`` (the ``name`` field of each file)."""
    names = {}
    for path in sorted(Path(configs_dir).glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        if not isinstance(raw, dict) or "name" not in raw:
            raise ResultsError(f"{path}: no 'name' field")
        names[raw["name"]] = path
    return names


def load_results(results_dir: Path = RESULTS) -> dict:
    """``{name: result dict}`` of ``results/*.json``; checks the required fields."""
    out = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            r = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ResultsError(f"{path}: not valid JSON ({e})") from None
        missing = [k for k in REQUIRED_FIELDS if k not in r]
        if missing:
            raise ResultsError(f"{path}: missing field(s) {', '.join(missing)}")
        if path.stem != r["name"]:
            raise ResultsError(f"{path}: file name does not match its name field {r['name']!r}")
        out[r["name"]] = r
    return out


def load_papers(path: Path = PAPERS) -> dict:
    """``{config name: entry}`` of ``results/papers.yaml``; checks the fields of every entry."""
    papers = yaml.safe_load(Path(path).read_text()) or {}
    for name, entry in papers.items():
        missing = [k for k in PAPER_FIELDS if k not in (entry or {})]
        if missing:
            raise ResultsError(f"{path}: {name}: missing field(s) {', '.join(missing)}")
        for i, rep in enumerate(entry["reported"]):
            if "metric" not in rep or "value" not in rep:
                raise ResultsError(f"{path}: {name}.reported[{i}]: needs 'metric' and 'value'")
            if rep["value"] is None and not rep.get("note"):
                raise ResultsError(f"{path}: {name}.reported[{i}]: a null value needs a 'note'")
    return papers


def _paper_cell(entry) -> str:
    if entry is None:
        return "—"
    parts = []
    for rep in entry["reported"]:
        key = rep.get("paper", entry["paper"])
        if rep["value"] is None:
            what = f"{rep['note']}"
        else:
            what = f"**{rep['value']:.2f}** ({rep['metric']})"
        parts.append(f"paper: {what}, {{cite:t}}`{key}`")
    return _cell("; ".join(parts))


def _data_cell(r) -> str:
    kind = "offline stand-in" if r["offline_standin"] else "real data"
    return _cell(f"**{kind}**: {r['data'].split(' (')[0]}")


def _acc_cell(r) -> str:
    # the final epoch only: a best-over-epochs test accuracy would be selected on the test set
    return _cell(f"{r['final_test_acc']:.2f}")


def _budget_cell(r) -> str:
    batches = r["max_batches_per_epoch"] or "all"
    data = r["config"].get("data", {})
    bs, tbs = data.get("batch_size", "?"), data.get("test_batch_size", "?")
    if not r["max_batches_per_epoch"]:
        test = "test: all"
    elif r.get("test_samples"):  # run_config spreads a smoke run's test samples over the whole test set
        test = f"test: {r['test_samples']} samples spread over the test set"
    else:  # results written before that change evaluated the first batches only
        test = f"test: first {r['max_batches_per_epoch'] * tbs} samples"
    return _cell(f"{r['epochs']} × {batches} of {bs}; {test} (config: {r['epochs_configured']} epochs, "
                 f"all batches)")


def render(results: dict, papers: dict, configs: dict) -> str:
    """The Markdown fragment: one row per config, then where each paper's number comes from."""
    unknown = sorted(set(results) - set(configs))
    if unknown:
        raise ResultsError(f"results for unknown config(s): {', '.join(unknown)} (no configs/*.yaml has that name)")
    lines = [
        "% Generated by tools/collect_results.py from results/*.json and results/papers.yaml. Do not edit;",
        "% run `python tools/collect_results.py` after adding a run.",
        "",
        f"| config | data actually used | snnedu test acc. % (final epoch) | date | {PAPER_LABEL} |",
        "|---|---|---|---|---|",
    ]
    for name, path in configs.items():
        paper = _paper_cell(papers.get(name))
        r = results.get(name)
        if r is None:
            row = [f"`{name}`", "not run yet", "—", "—", paper]
        else:
            row = [f"`{name}`", _data_cell(r), _acc_cell(r), _cell(r["date"]), paper]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Where the papers' numbers come from (every one of them is the paper's, not snnedu's):", ""]
    for name in configs:
        entry = papers.get(name)
        if entry is None:
            lines.append(f"- `{name}`: no number reported by a paper for this setting.")
            continue
        lines.append(f"- `{name}`: {entry['dataset']}; {_cell(entry['table'])} {{cite:p}}`{entry['paper']}`.")
    lines += ["", "Runs recorded (budget, device, machine, PyTorch, wall time of the run, data):", ""]
    for name in configs:
        r = results.get(name)
        if r is not None:
            wall = r.get("wall_time_s_this_run")
            wall = f", {wall:.0f} s" if isinstance(wall, (int, float)) else ""
            lines.append(f"- `{name}`: {_budget_cell(r)}; {_cell(r['device'])}, {_cell(r['machine'])}, "
                         f"torch {_cell(r['torch'])}{wall}; data: {_cell(r['data'])}; setting: {_cell(r['source'])}")
    return "\n".join(lines) + "\n"


def generate(results_dir: Path = RESULTS, papers_path: Path = PAPERS, configs_dir: Path = CONFIGS) -> str:
    return render(load_results(results_dir), load_papers(papers_path), config_names(configs_dir))


def generate_studies(studies_dir: Path = STUDIES, results_dir: Path = STUDY_RESULTS) -> str:
    """One section per study file (in file order), each rendered from its stored result."""
    sys.path.insert(0, str(ROOT))
    from snnedu.study import StudyError, check_study, load_result, load_study, markdown_report

    lines = ["% Generated by tools/collect_results.py from studies/*.yaml and results/studies/*.json. Do not edit;",
             "% run `python tools/collect_results.py` after a study.", ""]
    for path in sorted(Path(studies_dir).glob("*.yaml")):
        study = load_study(path)
        problems = check_study(path, results_dir)
        if problems:
            raise ResultsError(f"{path}: the stored result is stale: {problems[0]}")
        try:
            res = load_result(Path(results_dir) / f"{study['name']}.json")
        except StudyError as e:
            raise ResultsError(str(e)) from None
        chapter = study["chapter"]
        link = f" ({{doc}}`chapter <../notebooks/{chapter}>`)" if chapter else ""
        lines.append(markdown_report(res, heading=f"### {study['title']}{link}"))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--papers", type=Path, default=PAPERS)
    ap.add_argument("--configs", type=Path, default=CONFIGS)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--studies", type=Path, default=STUDIES)
    ap.add_argument("--study-results", type=Path, default=STUDY_RESULTS)
    ap.add_argument("--studies-out", type=Path, default=STUDIES_OUT)
    ap.add_argument("--check", action="store_true", help="only compare with --out; exit 1 if it differs")
    args = ap.parse_args(argv)
    try:
        results = load_results(args.results)
        outputs = [(args.out, render(results, load_papers(args.papers), config_names(args.configs))),
                   (args.studies_out, generate_studies(args.studies, args.study_results))]
    except ResultsError as e:
        print(f"collect_results: {e}", file=sys.stderr)
        return 2
    if args.check:
        status = 0
        for out, text in outputs:
            current = out.read_text() if out.exists() else None
            if current != text:
                print(f"collect_results: {out} is out of date; run python tools/collect_results.py",
                      file=sys.stderr)
                status = 1
            else:
                print(f"collect_results: {out} is up to date")
        return status
    for out, text in outputs:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"collect_results: wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
