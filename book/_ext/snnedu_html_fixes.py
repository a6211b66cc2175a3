"""Small HTML fixes for the built book, found by the browser check (tools/browser_check.py).

- Every ``<script>`` appears once per page. sphinx-thebe and sphinx-togglebutton register their inline
  scripts from a build event that runs after the HTML builder has copied the registry, so with
  Jupyter Book 1.0.4 / Sphinx 7.4 each page carried ``const THEBE_JS_URL = ...`` twice, and the
  second declaration raised ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``
  in the reader's console. Identical script entries are dropped here, keeping the first.
- The colour mode has a default. With none set, the PyData theme's script read an empty mode on a
  reader's first visit and logged ``Got invalid theme mode: . Resetting to auto.`` as a console error;
  the page template's ``default_mode`` is now ``auto`` (follow the reader's system setting).
- The root ``index.html`` (a one-line redirect written by sphinx-external-toc) names the favicon, so
  the browser does not ask for a missing ``/favicon.ico`` before it follows the redirect.

Loaded via ``sphinx: local_extensions`` in _config.yml.
"""
from pathlib import Path


def _page_fixes(app, pagename, templatename, context, doctree):
    context.setdefault("default_mode", "auto")  # the template reads it; the book theme never sets it
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        # the two copies differ only in filename: None in one, "" in the other (an inline body)
        key = (getattr(js, "filename", str(js)) or "", tuple(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def _redirect_favicon(app, exception):
    if exception is not None or app.builder.format != "html" or not app.config.html_favicon:
        return
    index = Path(app.outdir) / "index.html"
    if not index.exists():
        return
    text = index.read_text(encoding="utf-8")
    if 'rel="icon"' not in text and "Refresh" in text:
        icon = "_static/" + Path(app.config.html_favicon).name
        index.write_text(f'<link rel="icon" href="{icon}" />\n' + text, encoding="utf-8")


def setup(app):
    app.connect("build-finished", _redirect_favicon, priority=900)  # after the redirect is written
    app.connect("html-page-context", _page_fixes, priority=100)  # early: a later listener may end the event by returning a template
    return {"parallel_read_safe": True, "parallel_write_safe": True}
