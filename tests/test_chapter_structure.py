"""Front and back matter of every chapter: what a reader relies on when opening one.

tests/test_notebooks_meta.py already checks, for every notebook in notebooks/, the parameters cell,
the committed outputs and that the title cell carries the Colab badge of the notebook's own path.
This file checks that those notebooks are exactly the chapters of _toc.yml, and what comes around
the code: the Colab install cell, the learning objectives, the exercises with hidden solutions,
and that every glossary link points at a term that book/glossary.md defines.
"""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOC_CHAPTERS = re.findall(r"^\s*-\s*file:\s*(notebooks/\S+?)\s*$", (ROOT / "_toc.yml").read_text(), re.M)
TERM_ROLE = re.compile(r"\{term\}`([^`]*)`")
SOLUTION = re.compile(r"```\{admonition\} Solution[ \t]*\n[ \t]*:class: dropdown[ \t]*\n")


def _cells(chapter):
    return json.loads((ROOT / f"{chapter}.ipynb").read_text())["cells"]


def _source(cell):
    return "".join(cell["source"])


def _glossary_terms():
    text = (ROOT / "book" / "glossary.md").read_text()
    block = re.search(r"```\{glossary\}\n(.*?)\n```", text, re.S)
    assert block, "book/glossary.md has no ```{glossary} block"
    # a term is a non-indented, non-empty line of the block; its definition is indented below it
    return {line.strip() for line in block.group(1).splitlines() if line.strip() and not line[0].isspace()}


def _term_target(role_text):
    # {term}`text <target>` links to target; {term}`target` to itself
    m = re.fullmatch(r"(?s).*<([^<>]+)>\s*", role_text)
    return (m.group(1) if m else role_text).strip()


def test_toc_chapters_are_the_notebooks():
    on_disk = sorted(f"notebooks/{p.stem}" for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert TOC_CHAPTERS, "no notebook chapters found in _toc.yml"
    assert sorted(TOC_CHAPTERS) == on_disk, "every notebook must be a chapter of _toc.yml and vice versa"


@pytest.mark.parametrize("chapter", TOC_CHAPTERS)
def test_first_code_cell_installs_only_on_colab(chapter):
    code = [c for c in _cells(chapter) if c["cell_type"] == "code"]
    lines = _source(code[0]).splitlines()
    guard = [i for i, l in enumerate(lines) if re.match(r'if\s+"google\.colab"\s+in\s+sys\.modules\s*:', l)]
    assert guard, f"{chapter}: the first code cell must start the install with `if \"google.colab\" in sys.modules:`"
    installs = [i for i, l in enumerate(lines) if re.search(r"[%!]\s*pip\s+install", l)]
    assert installs, f"{chapter}: the first code cell installs nothing on Colab"
    for i in installs:
        assert i > guard[0] and lines[i].startswith((" ", "\t")), \
            f"{chapter}: {lines[i].strip()!r} is not inside the google.colab branch"
    for cell in code[1:]:
        assert not re.search(r"[%!]\s*pip\s+install", _source(cell)), f"{chapter}: pip install outside the first cell"


@pytest.mark.parametrize("chapter", TOC_CHAPTERS)
def test_learning_objectives_follow_the_title(chapter):
    cells = _cells(chapter)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), f"{chapter}: no title cell"
    objectives = _source(cells[1])
    assert cells[1]["cell_type"] == "markdown" and objectives.startswith("```{admonition} Learning objectives"), \
        f"{chapter}: the cell after the title must be the Learning objectives admonition"
    bullets = [l for l in objectives.splitlines() if l.startswith("- ")]
    assert 3 <= len(bullets) <= 5, f"{chapter}: {len(bullets)} learning objectives (want 3 to 5)"
    assert sum("bjectives" in _source(c) for c in cells if c["cell_type"] == "markdown") == 1, \
        f"{chapter}: learning objectives appear in more than one cell"


@pytest.mark.parametrize("chapter", TOC_CHAPTERS)
def test_exercises_with_hidden_solutions(chapter):
    md = [_source(c) for c in _cells(chapter) if c["cell_type"] == "markdown"]
    sections = [s for s in md if re.search(r"^## Exercises\s*$", s, re.M)]
    assert len(sections) == 1, f"{chapter}: want exactly one '## Exercises' section, found {len(sections)}"
    exercises = sections[0].split("## Exercises", 1)[1]
    n_exercises = len(re.findall(r"^\d+\.\s", exercises, re.M))
    n_solutions = len(SOLUTION.findall(exercises))
    assert 3 <= n_exercises <= 5, f"{chapter}: {n_exercises} exercises (want 3 to 5)"
    assert n_solutions >= 3, f"{chapter}: {n_solutions} dropdown solutions (want at least 3)"
    assert n_solutions == n_exercises, f"{chapter}: {n_exercises} exercises but {n_solutions} solutions"
    assert sections[0] == md[-1], f"{chapter}: the exercises must end the chapter"


def test_every_term_link_resolves():
    terms = _glossary_terms()
    assert {"spike", "surrogate gradient", "LIF", "tau"} <= terms, "glossary is missing core terms"
    pages = [(f"{c}.ipynb", _source(cell)) for c in TOC_CHAPTERS for cell in _cells(c) if cell["cell_type"] == "markdown"]
    pages += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "book").rglob("*.md"))]
    used = 0
    for name, text in pages:
        text = re.sub(r"``.*?``", "", text)  # a role quoted as code (``{term}`...` ``) is not a link
        for role in TERM_ROLE.findall(text):
            used += 1
            assert _term_target(role) in terms, f"{name}: {{term}}`{role}` is not a term of book/glossary.md"
    assert used >= len(TOC_CHAPTERS), "the chapters should link their key terms to the glossary"


def test_term_target_parsing():
    assert _term_target("time steps <time step>") == "time step"
    assert _term_target("surrogate gradient") == "surrogate gradient"
    assert _term_target("**x** <LIF>") == "LIF"


INLINE_API = re.compile(r"(?<![\w}])`(snnedu(?:\.\w+)+)`")


def _resolves(dotted):
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for p in parts[i:]:
            if not hasattr(obj, p):
                return False
            obj = getattr(obj, p)
        return True
    return False


@pytest.mark.parametrize("chapter", TOC_CHAPTERS)
def test_inline_api_mentions_link_to_the_reference(chapter):
    # `snnedu.LIF` in a chapter's prose is written {py:obj}`snnedu.LIF`, so it links to the API page
    # (the book is built with -n, so a link that does not resolve fails the build)
    bare = [m for c in _cells(chapter) if c["cell_type"] == "markdown"
            for m in INLINE_API.findall(_source(c)) if _resolves(m)]
    assert not bare, f"{chapter}: write {{py:obj}}`...` for these API names: {sorted(set(bare))}"


def test_the_inline_api_check_can_fail():
    assert INLINE_API.findall("see `snnedu.LIF` and {py:obj}`snnedu.PLIF`") == ["snnedu.LIF"]
    assert _resolves("snnedu.LIF") and _resolves("snnedu.viz.study_curves") and not _resolves("snnedu.NoSuch")
