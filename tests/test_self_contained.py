"""The repository is self-contained: nothing in it points at documents that a clone does not have.

Package, configs, results, studies, book, notebooks, tools, benchmarks, tests and the top-level
files cite chapters, book pages (e.g. the Paper settings appendix, book/paper_settings.md) or papers
(book/references.bib), never notes kept outside the repository: no ``../shared/...`` paths, no
``METHODS.md`` / ``TOOLCHAIN.md``, no "spec §3.2", "spec section 12.3", "spec 7.5" or "the spec".
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve()

# Files that still hold such pointers because another engineer is editing them right now; each is
# being edited under issue #13; remove when fixed (test_pending_files_still_need_their_entry says when).
PENDING = set()

# Files whose fix is deliberately postponed, with the reason (none at present).
DEFERRED = {}

SCANNED = ["snnedu", "configs", "results", "studies", "book", "notebooks", "tools", "benchmarks", "tests",
           ".ci", "README.md", "_config.yml", "_toc.yml", "pyproject.toml", "Makefile", "requirements.txt",
           "requirements-bench.txt"]
TEXT_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".json", ".ipynb", ".txt", ".toml", ".cfg", ".bib", ".sh",
                 ".ini", ".rst", ""}
SKIP_DIRS = {"_build", "__pycache__", ".ipynb_checkpoints", "node_modules", ".pytest_cache", "_static"}

POINTERS = re.compile(
    r"\.\./shared\b"                                   # ../shared/..., a sibling folder of the clone
    r"|\bshared/(?:spec|TOOLCHAIN)"                   # shared/spec/METHODS.md
    r"|\bMETHODS\.md\b|\bTOOLCHAIN\.md\b"
    r"|\bspec(?:ification)?\s*(?:§|section\b|sec\.)"   # spec §3.2, spec section 12.3
    r"|\bspec\s+#?\d+(?:\.\d+)*"                      # spec 7.5, spec #20
    r"|\(spec\b\s*[§\d]"                              # (spec §8.2), (spec 12.1)
    r"|\bmethods?\s+spec\b"                           # the method spec
    r"|\bthe\s+spec\b",                               # the spec
    re.IGNORECASE)


def pointers_in(text: str) -> list:
    """The out-of-repository pointers in ``text``, as ``(line number, matched text, line)``."""
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        for m in POINTERS.finditer(line):
            out.append((i, m.group(0), line.strip()[:160]))
    return out


def notebook_pointers(path: Path) -> list:
    """``(cell index, matched text, line)`` for every pointer in a notebook's sources and outputs."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for ci, cell in enumerate(nb.get("cells", [])):
        texts = ["".join(cell.get("source", []))]
        texts += [json.dumps(o, ensure_ascii=False) for o in cell.get("outputs", [])]
        for text in texts:
            out += [(ci, hit, line) for _, hit, line in pointers_in(text)]
    return out


def scanned_files() -> list:
    files = []
    for name in SCANNED:
        top = ROOT / name
        if top.is_file():
            files.append(top)
        elif top.is_dir():
            for p in sorted(top.rglob("*")):
                rel = p.relative_to(ROOT)
                if p.is_file() and p.suffix in TEXT_SUFFIXES and not SKIP_DIRS.intersection(rel.parts) \
                        and p.resolve() != THIS:
                    files.append(p)
    return files


def offending_files() -> dict:
    """``{relative path: [hits]}`` of every scanned file with an out-of-repository pointer."""
    bad = {}
    for p in scanned_files():
        try:
            text = None if p.suffix == ".ipynb" else p.read_text(encoding="utf-8")
            hits = notebook_pointers(p) if text is None else pointers_in(text)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue  # binary or not a notebook: nothing a reader follows
        if hits:
            bad[p.relative_to(ROOT).as_posix()] = hits
    return bad


OFFENDING = offending_files()


def test_the_scan_covers_the_project():
    names = {p.relative_to(ROOT).as_posix() for p in scanned_files()}
    for expected in ("snnedu/neurons.py", "configs/README.md", "results/papers.yaml", "book/intro.md",
                     "book/paper_settings.md", "notebooks/09_dvs_experiments.ipynb", "README.md"):
        assert expected in names


def test_no_pointers_outside_the_repository():
    allowed = PENDING | set(DEFERRED)
    bad = {k: v for k, v in OFFENDING.items() if k not in allowed}
    assert not bad, ("cite a chapter, a book page (book/paper_settings.md) or a paper (book/references.bib) "
                     "instead of documents outside the repository:\n"
                     + "\n".join(f"  {k}: {where}: {hit!r} in {line!r}" for k, v in bad.items()
                                 for where, hit, line in v))


def test_pending_files_still_need_their_entry():
    for name in sorted(PENDING | set(DEFERRED)):  # (a loop, not parameters: the lists may be empty)
        assert (ROOT / name).exists(), f"{name} is gone: remove it from PENDING / DEFERRED"
        assert name in OFFENDING, f"{name} no longer points outside the repository: drop it from PENDING / DEFERRED"


@pytest.mark.parametrize("text", [
    "The values come from `../shared/spec/METHODS.md` (the sources' scripts)",
    "# (see ../shared/TOOLCHAIN.md)",
    "the PLIF paper's network {cite:p}`fang2021plif` (spec §3.2) is",
    "how recordings become T frames, spec section 12.3",
    "frames at 42x42 (MLF pipeline, spec 7.5); committed settings (spec 8.4)",
    "the original's 2048 (spec #20)",
    "Copied from the headline-results table of the method spec",
    "as the spec says",
])
def test_the_pattern_catches_known_phrasings(text):
    assert pointers_in(text), text


@pytest.mark.parametrize("text", [
    "def get_surrogate(spec='atan', **kwargs):",
    "spec = importlib.util.spec_from_file_location('x', path)",
    "mod = importlib.util.module_from_spec(spec)",
    "for idx, label, spec in unit.samples:",
    "the PLIF paper's network (Fang et al. 2021); see the book's Paper settings appendix",
    "one decay shared by the levels of a unit",
    "AEDAT 3.1 specification: 28-byte packet headers",
])
def test_the_pattern_leaves_ordinary_code_and_prose_alone(text):
    assert not pointers_in(text), text


def test_notebook_hits_name_the_cell(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["fine\n"]},
                    {"cell_type": "markdown", "source": ["see (spec §14)\n"]},
                    {"cell_type": "code", "source": ["x = 1\n"], "outputs": [{"text": ["../shared/x\n"]}]}]}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert [ci for ci, _, _ in notebook_pointers(path)] == [1, 2]
