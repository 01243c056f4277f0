"""A real browser lays out matcalc's mathematics: the HTML note and the ``matcalc serve`` page.

Playwright drives Debian's Chromium (``/usr/bin/chromium``, which .ci/run installs; Playwright's
own browsers cannot be downloaded here) headless, with a fresh profile and no network features.
The tests read the boxes the browser laid out (``getBoundingClientRect``): every fraction has
height and its numerator stands above its denominator, subscripts sit lower than their base and
are smaller, sums carry their indices below. MathML shown as plain text would put numerator and
denominator side by side.

- The note of seed example 003 (an HTML file, no script): issue 4's acceptance.
- The page of ``matcalc serve`` (issue 15): an expression typed and variables declared in the
  form, derived; the result and the steps typeset as above, the code block and the check verdict
  as the API gives them, a URL that reproduces the page, downloads and the copy button; an error
  with its caret under the offending character; hostile input that ends in an error while
  another request is served; the menu of examples; no console errors (the page's content
  security policy blocks nothing of its own).

Skipped, with the reason, where Playwright or Chromium is missing. MATCALC_SCREENSHOT=path.png
keeps the note's screenshot; MATCALC_SERVE_SCREENSHOT=docs/images/serve.png writes the page's
(the README's picture).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.parse

import pytest

import matcalc as mc
from matcalc.web.state import PageState
from serving import SLOW, running

try:
    from playwright.sync_api import sync_playwright
except ImportError:                     # pragma: no cover — the test extra installs it
    sync_playwright = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium"),
                             shutil.which("chromium-browser")) if p and os.path.exists(p)), None)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars"]

pytestmark = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="playwright is not installed (pip install playwright)"),
    pytest.mark.skipif(CHROMIUM is None,
                       reason="chromium is not installed (.ci/run installs Debian's chromium)"),
]

#: Boxes of each matched element and of its children, as laid out: one list per element.
BOXES = """els => els.map(el => [el, ...el.children].map(n => {
    const r = n.getBoundingClientRect();
    return {left: r.left, top: r.top, width: r.width, height: r.height, bottom: r.bottom};
}))"""


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A headless Chromium with a fresh, empty profile."""
    driver = sync_playwright().start()
    try:
        context = driver.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True,
            args=ARGS, viewport={"width": 1200, "height": 900}, accept_downloads=True)
        yield context
        context.close()
    finally:
        driver.stop()


def boxes(page, selector: str) -> list[list[dict]]:
    """For every element matching ``selector``: its box, then its children's."""
    return page.eval_on_selector_all(selector, BOXES)


def assert_stacked(fractions: list[list[dict]]) -> None:
    """Each fraction has height, its numerator above its denominator, not beside it."""
    for whole, numerator, denominator in fractions:
        assert whole["height"] > 0 and whole["width"] > 0
        assert numerator["height"] > 0 and denominator["height"] > 0
        assert numerator["bottom"] <= denominator["top"] + 1
        assert whole["height"] >= numerator["height"] + denominator["height"] - 1


def assert_limits_below(sums: list[list[dict]]) -> None:
    """Each Σ carries its index below it."""
    for _, operator, index in sums:
        assert operator["height"] > 0 and index["height"] > 0
        assert index["top"] >= operator["top"] + operator["height"] / 2


# ---------------------------------------------------------------------------------------------
# The HTML note of a seed example
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def note(browser, tmp_path_factory):
    """The seed 003 note, loaded from its file."""
    notes = tmp_path_factory.mktemp("notes")
    script = os.path.join(ROOT, "examples", "seed_003_matmul_index.py")
    done = subprocess.run([sys.executable, script, str(notes)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    page = browser.new_page()
    page.goto((notes / "seed_003_matmul_index.html").as_uri())
    yield page
    page.close()


def test_fractions_are_stacked(note):
    fractions = boxes(note, "mfrac")
    assert len(fractions) >= 15                      # ∂y/∂A_kl and friends in every step
    assert_stacked(fractions)


def test_subscripts_are_lowered_and_smaller(note):
    subscripts = boxes(note, "td.rhs msub")
    assert len(subscripts) >= 20
    checked = 0
    for _, base, script in subscripts:
        if base["height"] == 0 or script["height"] == 0:
            continue
        assert script["top"] + script["height"] / 2 > base["top"] + base["height"] / 2
        assert script["height"] < base["height"] * 1.05 or script["width"] > base["width"]
        checked += 1
    assert checked >= 20


def test_sums_carry_their_indices_below(note):
    sums = boxes(note, "munder")
    assert len(sums) >= 6                            # Σ_k, Σ_ij, Σ_p, Σ_j in each step
    assert_limits_below(sums)


def test_the_note_renders_and_a_screenshot_is_taken(note, tmp_path):
    maths = boxes(note, "math")
    assert maths and all(m[0]["height"] > 0 for m in maths[:40])
    png = note.screenshot()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    keep = os.environ.get("MATCALC_SCREENSHOT")
    with open(keep or tmp_path / "note.png", "wb") as handle:
        handle.write(png)


# ---------------------------------------------------------------------------------------------
# The page of matcalc serve
# ---------------------------------------------------------------------------------------------

TANH = "sum((tanh(W @ X + b) - Y) ** 2) / m"
TANH_VARIABLES = [("W", "n,d", True), ("X", "d,m", False), ("b", "n", True), ("Y", "n,m", False)]


@pytest.fixture(scope="module")
def server():
    with running(timeout=8) as s:
        yield s


@pytest.fixture
def open_page(browser):
    """``open_page(url)``: a new tab at ``url``; its console errors are checked at the end."""
    pages, errors = [], []

    def opener(url: str):
        page = browser.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        pages.append(page)
        return page

    yield opener
    for page in pages:
        page.close()
    # no script error, nothing refused by the content security policy; the server's answers
    # to bad input (422) and to a timeout (504) are logged as failed loads, which they are not
    assert [e for e in errors if "status of 422" not in e and "status of 504" not in e] == []


def declare(page, variables) -> None:
    """Fill the variables table: (name, shape as --shape spells it, differentiate by it)."""
    for n, (name, dims, wrt) in enumerate(variables):
        rows = page.locator("#variables tbody tr")
        if n >= rows.count():
            page.click("#add-variable")
        row = rows.nth(n)
        row.locator(".var-name").fill(name)
        row.locator(".var-shape").fill(dims)
        row.locator(".var-wrt").set_checked(wrt)


def derived(page, timeout: float = 60_000) -> None:
    """Wait for the answer: the result or an error shown."""
    page.wait_for_selector("#output:not([hidden]), #error:not([hidden])", timeout=timeout)


def test_type_an_expression_declare_the_variables_and_derive(server, open_page, browser):
    page = open_page(server.url)
    page.fill("#expr", TANH)
    declare(page, TANH_VARIABLES)
    page.click("#derive")
    derived(page)
    res = mc.derive(TANH, ["W", "b"], shapes={"W": ("n", "d"), "X": ("d", "m"), "b": ("n",),
                                              "Y": ("n", "m")})
    assert page.is_visible("#output") and page.is_hidden("#error")
    assert page.text_content("#title") == \
        "Gradient of sum((tanh(W @ X + b) - Y) ** 2) / m with respect to W, b"

    # the result, typeset: the named intermediates' definitions (a, delta), then ∂f/∂W and 2/m
    # stacked in each of the two gradient equations
    assert page.locator("#equations math").count() == len(res.equations()) == 4
    fractions = boxes(page, "#equations mfrac")
    assert len(fractions) == 4
    assert_stacked(fractions)
    assert page.text_content("#result-text") == res.text()

    # the check's verdict, the code block
    verdict = re.fullmatch(r"PASSED: worst relative error (\S+)", page.text_content("#verdict"))
    assert verdict and float(verdict.group(1)) < 1e-6
    assert "passed" in page.get_attribute("#verdict", "class")
    assert page.text_content("#code-text") == res.numpy_source()

    # the steps: one collapsible block per block of the note, typeset
    note = res.steps()
    blocks = page.locator("#steps-body details")
    assert blocks.count() == len(note.blocks)
    assert page.locator("#steps-body summary").first.text_content() == "The expression"
    page.click("#expand-all")
    sums = boxes(page, "#steps-body munder")
    assert len(sums) >= 10
    assert_limits_below(sums)
    assert_stacked(boxes(page, "#steps-body mfrac"))
    body = blocks.nth(1).locator(".block-body")
    assert body.is_visible()
    blocks.nth(1).locator("summary").click()                  # collapse one block
    assert body.is_hidden() and blocks.nth(2).locator(".block-body").is_visible()
    page.click("#collapse-all")
    assert page.locator("#steps-body .block-body:visible").count() == 0

    # the URL holds the state; opened again, it reproduces the page
    state = PageState.from_params({"expr": TANH, "wrt": ["W", "b"],
                                   "shape": [f"{n}={d}" for n, d, _ in TANH_VARIABLES]})
    assert page.url == f"{server.url}?{state.to_query()}"
    assert page.get_attribute("#permalink", "href") == page.url
    again = open_page(page.url)
    derived(again)
    assert again.input_value("#expr") == TANH
    assert again.text_content("#result-text") == res.text()
    assert again.text_content("#code-text") == res.numpy_source()
    assert [again.locator("#variables tbody tr").nth(n).locator(".var-wrt").is_checked()
            for n in range(4)] == [True, False, True, False]

    # downloads: the note as LaTeX, Markdown, HTML, and the code
    for link, text in (("#download-latex", note.render("latex")),
                       ("#download-markdown", note.markdown()),
                       ("#download-html", note.html()),
                       ("#download-py", res.numpy_source())):
        with page.expect_download() as download:
            page.click(link)
        with open(download.value.path(), encoding="utf-8") as handle:
            assert handle.read() == text

    # the copy button puts the code on the clipboard
    browser.grant_permissions(["clipboard-read", "clipboard-write"],
                              origin=server.url.rstrip("/"))
    page.click("#copy-code")
    page.wait_for_selector("#copy-status:has-text('copied')")
    assert page.evaluate("navigator.clipboard.readText()") == res.numpy_source()

    keep = os.environ.get("MATCALC_SERVE_SCREENSHOT")
    if keep:
        again.set_viewport_size({"width": 1200, "height": 1320})
        again.evaluate("window.scrollTo(0, 0)")
        again.screenshot(path=keep)


#: Offsets of the caret and of the character it points at, and their laid-out boxes.
CARET = """pre => {
    const node = pre.firstChild, lines = node.data.split("\\n");
    const start = (n) => lines.slice(0, n).reduce((total, line) => total + line.length + 1, 0);
    const box = (offset) => {
        const range = document.createRange();
        range.setStart(node, offset);
        range.setEnd(node, offset + 1);
        const r = range.getBoundingClientRect();
        return {left: r.left, top: r.top};
    };
    const caret = start(2) + lines[2].indexOf("^");
    return {lines, caret: box(caret), under: box(start(1) + lines[2].indexOf("^"))};
}"""


def test_an_error_shows_its_caret_under_the_offending_text(server, open_page):
    page = open_page(server.url)
    page.fill("#expr", "sum(X) +* 2")
    declare(page, [("X", "n,n", True)])
    page.click("#derive")
    derived(page)
    assert page.is_visible("#error") and page.is_hidden("#output")
    laid = page.eval_on_selector("#error-text", CARET)
    assert laid["lines"] == ["error: invalid syntax: invalid syntax", "  sum(X) +* 2",
                             "          ^"]
    assert laid["lines"][1][laid["lines"][2].index("^")] == "*"
    assert abs(laid["caret"]["left"] - laid["under"]["left"]) < 0.5     # right under the *
    assert laid["caret"]["top"] > laid["under"]["top"]
    # the URL keeps the erroneous text, so the error can be shown to someone else
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["expr"] == \
        ["sum(X) +* 2"]


def test_hostile_input_is_an_error_while_another_request_is_served(server, open_page):
    slow = open_page(f"{server.url}?{PageState.from_params(SLOW).to_query()}")
    assert slow.text_content("#status") == "deriving…"
    page = open_page(server.url)
    declare(page, [("x", "n", True)])
    page.fill("#expr", "x + " * 10_000 + "x")                 # huge
    page.click("#derive")
    page.wait_for_selector("#error-text:has-text('the limit is 20000')")
    assert page.url == server.url            # an address that long could not be loaded again
    page.fill("#expr", "(" * 5000 + "x" + ")" * 5000)         # deeply nested
    page.click("#derive")
    page.wait_for_selector("#error-text:has-text('nested')")
    page.fill("#expr", "sum(tanh(x))")                        # and a sound request
    page.click("#derive")
    page.wait_for_selector("#result-text:has-text('1 - tanh(x) ** 2')")
    assert slow.text_content("#status") == "deriving…"        # still waiting meanwhile
    assert slow.is_hidden("#output") and slow.is_hidden("#error")
    slow.wait_for_selector("#error:not([hidden])", timeout=60_000)
    assert slow.text_content("#error-text") == (
        "error: the derivation took longer than 8 s and was stopped (the server is still "
        "running; try a smaller expression)")


def test_the_menu_of_examples_loads_one(server, open_page):
    page = open_page(server.url)
    page.wait_for_selector("#examples optgroup", state="attached")
    groups = page.eval_on_selector_all("#examples optgroup", "gs => gs.map(g => g.label)")
    assert groups == ["Seed notes", "Matrix Cookbook", "Machine-learning losses",
                      "Jacobians and Hessians"]
    page.select_option("#examples", label="(101) tr(A X B)")
    page.wait_for_selector("#result-text:has-text('A.T @ B.T')")
    assert page.input_value("#expr") == "trace(A @ X @ B)"
    assert page.url == f"{server.url}?expr=trace(A%20@%20X%20@%20B)&wrt=X&shape=A=n,n" \
                       "&shape=X=n,n&shape=B=n,n"
    assert page.text_content("#verdict").startswith("PASSED")
