"""The book as a reader meets it: built, served on localhost and loaded page by page in headless Chromium.

tools/browser_check.py does the work; these tests prove it catches each kind of breakage on a tiny
synthetic site, then run it over the real book. They need a Chromium: `.ci/run` installs Debian's
`chromium` and sets SNNEDU_REQUIRE_BROWSER=1, so on CI a missing browser is a failure, not a skip.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import browser_check as bc  # noqa: E402

CHROMIUM = bc.find_chromium()
if CHROMIUM is None and os.environ.get("SNNEDU_REQUIRE_BROWSER") == "1":
    raise RuntimeError("SNNEDU_REQUIRE_BROWSER=1 but no Chromium found (apt-get install chromium)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium); "
                                                       ".ci/run installs it so CI runs these tests")

MATHJAX = ROOT / "book" / "_static" / "mathjax" / "tex-chtml.js"
SHOTS = ROOT / "_build" / "browser_check"


def _site(tmp_path: Path) -> Path:
    """Four pages: two clean, a redirect, and one with every kind of problem the checker must report."""
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15"
           b"\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82")
    (site / "img" / "ok.png").write_bytes(png)
    (site / "img" / "corrupt.png").write_bytes(b"not a png at all")
    (site / "index.html").write_text(
        '<html><body><main><h1 id="top">Fine</h1><img src="img/ok.png">'
        '<a href="good.html#sec">to good</a> <a href="https://example.org/x">external</a>'
        '</main></body></html>')
    (site / "good.html").write_text('<html><body><main><h2 id="sec">Section</h2>'
                                    '<a href="index.html#top">back</a></main></body></html>')
    (site / "redirect.html").write_text('<meta http-equiv="Refresh" content="0; url=good.html" />')
    (site / "bad.html").write_text(
        '<html><body><main>'
        '<img src="img/missing.png"> <img src="img/corrupt.png">'
        '<a href="nowhere.html">dead link</a> <a href="good.html#no-such-anchor">dead anchor</a>'
        '<span class="math notranslate nohighlight">\\(x^2\\)</span>'
        '<p>Raw display math left as text: $$ y = x $$</p>'
        '<script>console.error("boom from the page")</script>'
        '<script>undefinedFunctionCall()</script>'
        '<article style="width: 400px"><table style="width: 900px"><tr><td>a table too wide for the column'
        '</td></tr></table><div style="overflow-x: auto"><table style="width: 700px"><tr><td>scrolled away'
        '</td></tr></table></div><table><tr><td>fits</td></tr></table></article>'
        '</main></body></html>')
    return site


def test_checker_reports_every_kind_of_breakage(tmp_path):
    site = _site(tmp_path)
    rep = bc.check_site(site, screenshots={"bad": "bad.html"}, shot_dir=tmp_path / "shots")
    by_page = {p.page: p for p in rep.pages}
    assert set(by_page) == {"index.html", "good.html", "bad.html", "redirect.html"}
    assert by_page["index.html"].problems == [] and by_page["good.html"].problems == []
    assert by_page["redirect.html"].problems == [] and by_page["redirect.html"].n_links == 1  # judged where it lands
    assert by_page["index.html"].n_images == 1 and by_page["index.html"].n_links == 1  # external not counted
    bad = by_page["bad.html"]
    assert any("boom from the page" in e for e in bad.console_errors), bad.console_errors
    assert any("undefinedFunctionCall" in e for e in bad.console_errors), bad.console_errors
    assert any("404" in r and "missing.png" in r for r in bad.failed_requests), bad.failed_requests
    assert sorted(bad.broken_images) == ["img/corrupt.png", "img/missing.png"]
    assert any("missing file nowhere.html" in m for m in bad.broken_links), bad.broken_links
    assert any("no anchor #no-such-anchor" in m for m in bad.broken_links), bad.broken_links
    assert any("unrendered" in m and "x^2" in m for m in bad.unrendered_math), bad.unrendered_math
    assert any(m.startswith("raw TeX in text: $$") for m in bad.unrendered_math), bad.unrendered_math
    assert len(bad.too_wide) == 2 and all(m.startswith("table ") for m in bad.too_wide), bad.too_wide
    assert any("too wide" in m for m in bad.problems)
    shot = Path(rep.screenshots["bad"])
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 1000


def test_the_built_book_loads_cleanly_in_chromium(tmp_path):
    assert MATHJAX.exists(), "MathJax is missing: run `make mathjax` (make test does it) before this test"
    out = tmp_path / "book"
    r = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(ROOT), "-W", "-n",
                        "--keep-going", "--path-output", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    html = out / "_build" / "html"
    pages = bc.pages_of(html)
    expected = {"book/intro.html", "book/glossary.html", "book/results.html", "book/paper_settings.html",
                "book/speed.html", "book/references.html", "book/api/index.html"}
    expected |= {f"notebooks/{p.stem}.html" for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert expected <= set(pages), sorted(expected - set(pages))
    shots = {"intro": "book/intro.html", "chapter_02": "notebooks/02_lif_surrogate.html"}
    rep = bc.check_site(html, pages=pages, screenshots=shots, shot_dir=SHOTS)
    print(rep.summary())
    assert rep.problems == [], rep.summary()
    assert sum(p.n_math for p in rep.pages) > 500  # the chapters' math was typeset, not skipped
    assert all(p.n_links > 0 for p in rep.pages)
    for name in shots:
        png = SHOTS / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, png
    # launch buttons: every chapter offers Colab (the rocket menu) for its own notebook
    for page in (p for p in pages if p.startswith("notebooks/")):
        text = (html / page).read_text()
        stem = Path(page).stem
        assert f"colab.research.google.com/github/snnedu/snnedu/blob/main/notebooks/{stem}.ipynb" in text, page
