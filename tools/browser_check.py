"""Load every page of a built book in headless Chromium and report what a reader would see broken.

    python tools/browser_check.py _build/html [--screenshots DIR] [--shot intro=index.html ...]

The built HTML folder is served on a local port (nothing leaves the machine). One headless Chromium
is driven over the Chrome DevTools Protocol (a WebSocket, via ``websocket-client``) and, for every
``*.html`` page, fails on:

- a console error or an uncaught JavaScript exception;
- a resource that did not load (HTTP status >= 400 or a failed request): a missing image, script, font;
- an ``<img>`` that did not decode (``naturalWidth == 0``);
- an internal link to a file that does not exist, or to an ``#anchor`` that the target page lacks;
- math left unrendered: a MathJax ``.math`` element without its rendered ``mjx-container``, or raw
  TeX delimiters (``$$``, ``\\(``, ``\\[``) left in the visible text.

Screenshots of chosen pages are saved as PNG. The exit status is 0 when no page has a problem.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional
from urllib.parse import unquote, urldefrag, urljoin, urlparse

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> Optional[str]:
    """Path of a Chromium/Chrome executable (``$CHROMIUM`` first), or None."""
    env = os.environ.get("CHROMIUM")
    if env and shutil.which(env):
        return shutil.which(env)
    for name in CHROMIUM_NAMES:
        if shutil.which(name):
            return shutil.which(name)
    return None


@dataclass
class PageReport:
    """What went wrong on one page (empty lists: the page is fine)."""
    page: str
    console_errors: List[str] = field(default_factory=list)
    failed_requests: List[str] = field(default_factory=list)
    broken_images: List[str] = field(default_factory=list)
    broken_links: List[str] = field(default_factory=list)
    unrendered_math: List[str] = field(default_factory=list)
    too_wide: List[str] = field(default_factory=list)  # wider than the content column (clipped or scrolled)
    external: List[str] = field(default_factory=list)  # off-site resources: not loadable offline, not judged
    n_links: int = 0
    n_images: int = 0
    n_math: int = 0

    @property
    def problems(self) -> List[str]:
        out = []
        for kind in ("console_errors", "failed_requests", "broken_images", "broken_links", "unrendered_math",
                     "too_wide"):
            out += [f"{self.page}: {kind.replace('_', ' ').rstrip('s')}: {p}" for p in getattr(self, kind)]
        return out


@dataclass
class SiteReport:
    pages: List[PageReport]
    screenshots: Dict[str, str]

    @property
    def problems(self) -> List[str]:
        return [p for page in self.pages for p in page.problems]

    def summary(self) -> str:
        n = len(self.pages)
        links = sum(p.n_links for p in self.pages)
        imgs = sum(p.n_images for p in self.pages)
        maths = sum(p.n_math for p in self.pages)
        ext = sorted({u for p in self.pages for u in p.external})
        head = (f"browser check: {n} pages, {links} internal links, {imgs} images, {maths} math elements; "
                f"{len(self.problems)} problems; {len(ext)} off-site resources not loaded (no network; not judged)")
        return "\n".join([head] + [f"  {p}" for p in self.problems[:50]])


# -- a quiet static file server on a free local port ------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no request log on stderr
        pass


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(root: Path):
    """Start serving ``root`` on 127.0.0.1 (a free port); returns ``(server, base_url)``."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = _Server(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


# -- Chrome DevTools Protocol over one WebSocket -----------------------------------------------------
class Browser:
    """A headless Chromium with one page, driven over the DevTools Protocol."""

    def __init__(self, executable: Optional[str] = None, width: int = 1280, height: int = 900,
                 timeout: float = 60.0):
        import websocket  # websocket-client (pinned in requirements.txt)

        self.executable = executable or find_chromium()
        if self.executable is None:
            raise RuntimeError("no Chromium found (tried $CHROMIUM, " + ", ".join(CHROMIUM_NAMES) +
                               "); on Debian: apt-get install chromium")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="snnedu-chromium-")
        self.proc = subprocess.Popen(
            [self.executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
             f"--window-size={width},{height}", f"--user-data-dir={self.profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None:
                raise RuntimeError(f"Chromium exited with {self.proc.returncode}: {self.proc.stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                self.close()
                raise RuntimeError("Chromium did not open its DevTools port in time")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=timeout))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout,
                                              suppress_origin=True)
        self._id = 0
        self.events: List[dict] = []
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")

    def call(self, method: str, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are kept in ``events``."""
        self._id += 1
        my_id = self._id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"{method} got no answer in {self.timeout} s")

    def wait_event(self, method: str, timeout: Optional[float] = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        for i, ev in enumerate(self.events):
            if ev["method"] == method:
                return self.events.pop(i)
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            if "method" in msg:
                self.events.append(msg)
        raise TimeoutError(f"no {method} within the time limit")

    def evaluate(self, expression: str, await_promise: bool = False):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise)
        if "exceptionDetails" in res:
            raise RuntimeError(f"page script failed: {res['exceptionDetails'].get('text')}")
        return res["result"].get("value")

    def goto(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_event("Page.loadEventFired")

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
        data = self.call("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            if getattr(self, "ws", None) is not None:
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# What the page reports about itself once MathJax (if any) has finished typesetting.
_INSPECT = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const math = Array.from(document.querySelectorAll('.math'));
  const bare = math.filter(m => !m.querySelector('mjx-container') && m.tagName !== 'MJX-CONTAINER')
                   .map(m => m.textContent.trim().slice(0, 80));
  const main = document.querySelector('main') || document.body || document.documentElement;
  const clone = main.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .math, textarea').forEach(e => e.remove());
  const text = clone.textContent;
  const raw = [];
  for (const d of ['$$', '\\(', '\\[', '\\begin{']) {
    const k = text.indexOf(d);
    if (k >= 0) raw.push(d + ' ... ' + text.slice(Math.max(0, k - 30), k + 50).replace(/\s+/g, ' '));
  }
  const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.href);
  // content wider than the content column: clipped, or hidden behind a horizontal scroll bar
  const col = document.querySelector('main article') || document.querySelector('article') || main;
  const right = col.getBoundingClientRect().right, width = col.clientWidth;
  const wide = [];
  col.querySelectorAll('table, img, svg, figure, .cell_output img, mjx-container[display="true"]').forEach(e => {
    if (e.closest('pre, .highlight, mjx-container:not([display="true"])')) return;
    const r = e.getBoundingClientRect();
    if (r.width === 0) return;
    const w = Math.max(e.scrollWidth || 0, r.width);
    if (r.right > right + 2 || w > width + 2) {
      const what = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '');
      wide.push(`${what} ${Math.round(w)} px in a ${Math.round(width)} px column: ` +
                (e.textContent || e.getAttribute('src') || '').trim().replace(/\s+/g, ' ').slice(0, 60));
    }
  });
  return {broken, bare, raw, links, wide, n_images: imgs.length, n_math: math.length};
})()
"""


class _Ids(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("id", "name") and v:
                self.ids.add(v)


@functools.lru_cache(maxsize=None)
def _anchors(path: Path) -> frozenset:
    parser = _Ids()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return frozenset(parser.ids)


def _check_link(root: Path, base: str, href: str) -> Optional[str]:
    """None when an internal link resolves (file and, if any, anchor); else what is wrong."""
    if not href.startswith(base):
        return None  # external: not checked (no network here)
    url, frag = urldefrag(href)
    rel = unquote(urlparse(url).path)[len(urlparse(base).path):]
    target = root / rel
    if target.is_dir() or rel == "":
        target = target / "index.html"
    if not target.exists():
        return f"{href} -> missing file {rel or 'index.html'}"
    if frag and target.suffix == ".html" and unquote(frag) not in _anchors(target):
        return f"{href} -> no anchor #{frag} in {target.relative_to(root)}"
    return None


def _is_redirect(path: Path) -> bool:
    """A page that only forwards the reader (``<meta http-equiv="Refresh" ...>``)."""
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def pages_of(root: Path) -> List[str]:
    """Every HTML page a reader can reach (Sphinx's own genindex/search included), sorted."""
    skip = ("_static/", "_sources/", "_images/", "_downloads/", "_modules/")
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html")
                  if not p.relative_to(root).as_posix().startswith(skip))


def check_site(root, pages: Optional[List[str]] = None, screenshots: Optional[Dict[str, str]] = None,
               shot_dir=None, executable: Optional[str] = None, progress: bool = False) -> SiteReport:
    """Serve ``root`` and check ``pages`` (default: every page). ``screenshots`` maps a name to a page;
    each is saved as ``shot_dir/NAME.png``."""
    root = Path(root).resolve()
    if not (root / "index.html").exists() and pages is None:
        raise FileNotFoundError(f"{root} has no index.html: build the book first (make book)")
    pages = pages if pages is not None else pages_of(root)
    screenshots = screenshots or {}
    shots: Dict[str, str] = {}
    server, base = serve(root)
    reports = []
    try:
        with Browser(executable) as b:
            for page in pages:
                rep = PageReport(page)
                url = urljoin(base, page)
                b.goto(url)
                if _is_redirect(root / page):  # e.g. the root index.html: judge the page it lands on
                    b.wait_event("Page.loadEventFired")
                info = b.evaluate(_INSPECT, await_promise=True)
                time.sleep(0.05)
                b.call("Runtime.evaluate", expression="0")  # drain events that arrived meanwhile
                urls = {ev["params"]["requestId"]: ev["params"]["request"]["url"]
                        for ev in b.events if ev["method"] == "Network.requestWillBeSent"}

                def local(u: str) -> bool:
                    return u.startswith(base) or u.startswith("data:")

                for ev in b.events:
                    m, p = ev["method"], ev.get("params", {})
                    if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                        args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                        rep.console_errors.append(args[:300])
                    elif m == "Runtime.exceptionThrown":
                        d = p.get("exceptionDetails", {})
                        rep.console_errors.append((d.get("exception", {}).get("description") or d.get("text", ""))[:300])
                    elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                        e = p["entry"]
                        if e.get("source") != "network" and local(e.get("url") or base):  # network failures are reported below, once
                            rep.console_errors.append(f"{e.get('text', '')[:300]} ({e.get('url', '')})")
                    elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
                        rep.failed_requests.append(f"{p['response']['status']} {p['response']['url']}")
                    elif m == "Network.loadingFailed" and not p.get("canceled"):
                        u = urls.get(p.get("requestId"), "?")
                        if local(u):
                            rep.failed_requests.append(f"{p.get('errorText')} {u}")
                        else:
                            rep.external.append(u)
                rep.broken_images = [s for s in info["broken"] if local(urljoin(url, s or ""))]
                rep.too_wide = list(info["wide"])
                rep.unrendered_math = [f"unrendered: {t}" for t in info["bare"]] + \
                                      [f"raw TeX in text: {t}" for t in info["raw"]]
                internal = sorted({h for h in info["links"] if h.startswith(base)})
                rep.n_links, rep.n_images, rep.n_math = len(internal), info["n_images"], info["n_math"]
                rep.broken_links = [msg for h in internal if (msg := _check_link(root, base, h))]
                for name, shot_page in screenshots.items():
                    if shot_page == page and shot_dir is not None:
                        path = Path(shot_dir) / f"{name}.png"
                        b.screenshot(path)
                        shots[name] = str(path)
                reports.append(rep)
                if progress:
                    print(f"{'ok ' if not rep.problems else 'BAD'} {page}", file=sys.stderr)
    finally:
        server.shutdown()
        server.server_close()
    return SiteReport(reports, shots)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html", nargs="?", default="_build/html", help="the built book (default _build/html)")
    ap.add_argument("--screenshots", default="_build/browser_check", help="folder for the PNG screenshots")
    ap.add_argument("--shot", action="append", default=[], metavar="NAME=PAGE",
                    help="save a screenshot of PAGE as NAME.png (repeatable); "
                         "default intro=book/intro.html and a chapter")
    ap.add_argument("--page", action="append", help="check only this page (repeatable)")
    args = ap.parse_args(argv)
    shots = dict(s.split("=", 1) for s in args.shot) or {"intro": "book/intro.html",
                                                         "chapter_02": "notebooks/02_lif_surrogate.html"}
    rep = check_site(args.html, pages=args.page, screenshots=shots, shot_dir=args.screenshots, progress=True)
    print(rep.summary())
    for name, path in rep.screenshots.items():
        print(f"screenshot {name}: {path}")
    return 1 if rep.problems else 0


if __name__ == "__main__":
    sys.exit(main())
