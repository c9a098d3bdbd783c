"""The website, as a reader's browser sees it.

Builds the jupyter-book site from `_config.yml` / `_toc.yml` with warnings as errors into a
temporary folder, serves it on 127.0.0.1, and loads every page in headless Chromium
(Debian's `chromium` + `chromium-driver`, driven by selenium). For every page: HTTP 200,
the page's own title, every image loaded and described by alt text, every formula typeset
by MathJax, every same-site link pointing at an existing file (and anchor). The first
screen of each page is saved to `_build/screenshots/` (CI keeps them as artifacts).

Without Chromium the test skips with a message on a developer's machine, and fails in CI
(environment variable CI set), where the set-up installs it. `BERTEDU_SITE=_build/html`
checks an already built site instead of building one (quicker while writing a page).
"""
from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "_build" / "screenshots"
IMAGE_FILE = re.compile(r"\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
                  "--window-size=1280,1000"]


def toc_docnames(toc_file: Path = ROOT / "_toc.yml") -> list[str]:
    """The pages of the book in reading order: the root, then every entry of `_toc.yml`."""
    toc = yaml.safe_load(toc_file.read_text())
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", [{"chapters": toc.get("chapters")}]):
        walk(part.get("chapters"))
    return [re.sub(r"\.(md|ipynb)$", "", name) for name in names]


def source_title(docname: str) -> str:
    """The text of the page's first `# ` heading in its source, inline markup removed."""
    if (ROOT / f"{docname}.md").exists():
        lines = (ROOT / f"{docname}.md").read_text().splitlines()
    else:
        notebook = json.loads((ROOT / f"{docname}.ipynb").read_text())
        lines = [line for cell in notebook["cells"] if cell["cell_type"] == "markdown"
                 for line in "".join(cell["source"]).splitlines()]
    heading = next(line for line in lines if line.startswith("# "))
    return re.sub(r"[`*]", "", heading[2:]).strip()


def straight_quotes(text: str) -> str:
    """Undo Sphinx's smart quotes ("Poor man's" is rendered "Poor man’s")."""
    return text.translate({0x2018: "'", 0x2019: "'", 0x201C: '"', 0x201D: '"'})


PAGES = toc_docnames()
GENERATED = ["genindex", "search"]  # pages Sphinx adds to every site


# ---------------------------------------------------------------------------------------
# Fixtures: the built site, a local server, a browser


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The folder of the built website (its index.html at the top)."""
    if os.environ.get("BERTEDU_SITE"):
        folder = Path(os.environ["BERTEDU_SITE"]).resolve()
        assert (folder / "index.html").exists(), f"BERTEDU_SITE={folder} holds no index.html"
        return folder
    out = tmp_path_factory.mktemp("book")
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(ROOT), "-W", "--keep-going",
                             "--path-output", str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # no colour codes
        problems = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        pytest.fail("the book does not build without warnings (jupyter-book build . -W):\n"
                    + "\n".join(problems[:40] or log.splitlines()[-40:]))
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def base_url(site):
    """`http://127.0.0.1:PORT/`, a static file server on `site` for the module's tests."""
    class QuietHandler(SimpleHTTPRequestHandler):
        def log_message(self, *args):  # one line per request would drown pytest's output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def find_chromium() -> tuple[str, str] | None:
    """(browser, chromedriver) paths, or None if either is missing."""
    browser = next(filter(None, map(shutil.which, ["chromium", "chromium-browser"])), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    found = find_chromium()
    if found is None:
        message = ("headless Chromium is needed for the website test: "
                   "apt-get install -y chromium chromium-driver")
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must install it; see the Makefile's set-up)")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = found[0]
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    # Both paths given: selenium uses them and never runs its own driver download.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=found[1]))
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


# ---------------------------------------------------------------------------------------
# What a page must satisfy

PAGE_FACTS = """
// The first non-empty <h1> (the theme puts an empty one on some generated pages),
// without its "#" permalink.
const heading = Array.from(document.querySelectorAll('h1')).map(h1 => {
  const copy = h1.cloneNode(true);
  copy.querySelectorAll('.headerlink').forEach(a => a.remove());
  return copy.textContent.replace(/\\s+/g, ' ').trim();
}).find(text => text) || null;
return {
  title: document.title,
  heading: heading,
  images: Array.from(document.images).map(img => ({
    src: img.currentSrc || img.src, alt: img.getAttribute('alt'),
    complete: img.complete, width: img.naturalWidth})),
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  math: document.querySelectorAll('.math').length,
  resources: performance.getEntriesByType('resource').map(r => [r.name, r.responseStatus]),
};
"""

# Resolves once MathJax has loaded and typeset the page; MathJax 3 replaces the config
# object `window.MathJax` by the library, whose `startup.promise` settles after typesetting.
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const started = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('ok'), e => done('error: ' + e));
  } else if (Date.now() - started > 20000) {
    done('MathJax did not load');
  } else {
    setTimeout(poll, 100);
  }
})();
"""

MATH_FACTS = """
const math = Array.from(document.querySelectorAll('.math'));
return {
  untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 80)),
  errors: Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent.slice(0, 80)),
};
"""


SCROLL_TO_FIRST_FIGURE = """
const figure = document.querySelector('article img');
if (figure) { figure.scrollIntoView({block: 'center'}); }
return Boolean(figure);
"""


def page_url(base_url: str, docname: str) -> str:
    return urllib.parse.urljoin(base_url, f"{docname}.html")


@functools.lru_cache(maxsize=None)
def fetch(url: str) -> tuple[int, str]:
    """(HTTP status, body as text) of a same-site URL."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, ""


def broken_links(base_url: str, links: list[str]) -> list[str]:
    """Same-site links whose file is missing (not 200) or whose #anchor is not on the page."""
    broken = []
    for link in sorted(set(links)):
        if not link.startswith(base_url):
            continue  # another site (the repository, Binder, Colab, a DOI): not ours to check
        address, _, anchor = link.partition("#")
        status, body = fetch(address)
        if status != 200:
            broken.append(f"{link} (HTTP {status})")
        elif anchor and address.endswith(".html"):
            anchor = urllib.parse.unquote(anchor)
            if f'id="{anchor}"' not in body and f'name="{anchor}"' not in body:
                broken.append(f"{link} (no element with id {anchor!r})")
    return broken


def load(browser, url: str) -> dict:
    """Open `url` like a reader: wait for the load event, then for MathJax if the page has
    formulas. Returns the page's facts (PAGE_FACTS) plus `mathjax`, MathJax's state."""
    browser.get(url)  # returns after the load event: images have loaded or failed by then
    facts = browser.execute_script(PAGE_FACTS)
    facts["mathjax"] = browser.execute_async_script(WAIT_FOR_MATHJAX) if facts["math"] else None
    return facts


def check_page(browser, base_url: str, docname: str, facts: dict) -> None:
    """Assert everything a reader relies on, on the page `load` just opened."""
    assert facts["heading"], f"{docname}: the page has no <h1> heading"
    assert facts["title"].startswith(facts["heading"]), \
        f"{docname}: <title> {facts['title']!r} does not name the page's heading {facts['heading']!r}"

    for image in facts["images"]:
        name = image["src"].rsplit("/", 1)[-1]
        assert image["complete"] and image["width"] > 0, f"{docname}: image {name} did not load"
        # Sphinx writes the file's path as alt when a cell gives none.
        alt = (image["alt"] or "").strip()
        assert alt and not IMAGE_FILE.search(alt), (
            f"{docname}: image {name} has no alt text (alt={image['alt']!r}); give its cell the "
            'metadata {"mystnb": {"image": {"alt": "what the figure shows"}}}')

    if facts["math"]:
        assert facts["mathjax"] == "ok", f"{docname}: {facts['mathjax']}"
        math = browser.execute_script(MATH_FACTS)
        assert not math["untypeset"], f"{docname}: formulas MathJax did not typeset: {math['untypeset'][:5]}"
        assert not math["errors"], f"{docname}: TeX errors: {math['errors'][:5]}"

    # Same-site files the page loaded (style sheets, scripts, fonts, MathJax's parts); the
    # browser's own guess at /favicon.ico is not the page's request.
    missing = [name for name, code in browser.execute_script(PAGE_FACTS)["resources"]
               if name.startswith(base_url) and code not in (200, 304)
               and name != base_url + "favicon.ico"]
    assert not missing, f"{docname}: files the page asked for and did not get: {missing}"

    broken = broken_links(base_url, facts["links"])
    assert not broken, f"{docname}: links that go nowhere:\n" + "\n".join(broken)


# ---------------------------------------------------------------------------------------
# The tests


def test_every_built_page_is_in_the_toc(site):
    """Every HTML page of the site is one this module loads (no orphan, none unchecked)."""
    built = {str(p.relative_to(site).with_suffix("")) for p in site.rglob("*.html")
             if not p.relative_to(site).parts[0].startswith("_")}
    assert built == set(PAGES) | set(GENERATED) | {"index"}


def test_home_address_opens_the_landing_page(browser, base_url):
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base_url)  # index.html forwards to the root page with a meta refresh
    landing = page_url(base_url, PAGES[0])
    WebDriverWait(browser, 10).until(lambda b: b.current_url == landing)
    assert browser.title.startswith(source_title(PAGES[0]))


@pytest.fixture(scope="module")
def screenshots() -> Path:
    """`_build/screenshots/`, emptied first so that it holds this run's pictures only."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.mark.parametrize("docname", PAGES)
def test_page(browser, base_url, screenshots, docname):
    url = page_url(base_url, docname)
    status, _ = fetch(url)
    assert status == 200, f"{url}: HTTP {status}"
    facts = load(browser, url)
    # Pictures first, so that a failing page is in the artifacts too: the first screen,
    # and the page's first figure if it has one.
    stem = f"{PAGES.index(docname):02d}_{docname.replace('/', '_')}"
    browser.save_screenshot(str(screenshots / f"{stem}.png"))
    if browser.execute_script(SCROLL_TO_FIRST_FIGURE):
        browser.save_screenshot(str(screenshots / f"{stem}_figure.png"))
    check_page(browser, base_url, docname, facts)
    assert straight_quotes(facts["heading"]) == source_title(docname)


@pytest.mark.parametrize("docname", GENERATED)
def test_generated_page(browser, base_url, docname):
    url = page_url(base_url, docname)
    assert fetch(url)[0] == 200, f"{url}: not found"
    check_page(browser, base_url, docname, load(browser, url))


def test_math_and_citations_render_on_the_notation_page(browser, base_url):
    """A page known to hold formulas and a citation: the checks above are not vacuous."""
    facts = load(browser, page_url(base_url, "book/notation"))
    check_page(browser, base_url, "book/notation", facts)
    assert facts["math"] > 20
    bibliography = page_url(base_url, "book/bibliography")
    assert any(link.startswith(bibliography + "#") for link in facts["links"])
