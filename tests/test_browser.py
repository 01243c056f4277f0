"""A browser lays out the HTML note of a seed example as mathematics (issue 4's acceptance).

Headless Chromium (Debian's ``chromium`` package, which .ci/run installs) opens the note that
examples/seed_003_matmul_index.py writes, and the test reads the rendered boxes through the
DevTools protocol over a pipe (``DOM.getBoxModel``; the page itself has no script): every fraction
has height and its numerator stands above its denominator, subscripts sit lower than their base
and are smaller, the sums carry their indices below. A page whose MathML were shown as plain text
would put numerator and denominator side by side. Skipped when chromium is not installed.

Set MATCALC_SCREENSHOT=path.png to keep the screenshot the test takes.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class Browser:
    """Headless Chromium driven through ``--remote-debugging-pipe`` (fd 3 in, fd 4 out)."""

    def __init__(self, profile: str):
        browser_in, self._to_child = os.pipe()        # commands: we write, chromium reads fd 3
        self._from_child, browser_out = os.pipe()     # answers: chromium writes fd 4, we read

        def plumb():                                  # in the child, before exec
            high_in = fcntl.fcntl(browser_in, fcntl.F_DUPFD, 10)     # out of the way of 3, 4
            high_out = fcntl.fcntl(browser_out, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", "--hide-scrollbars", f"--user-data-dir={profile}",
             "--remote-debugging-pipe", "--window-size=1100,900", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=plumb)
        os.close(browser_in)
        os.close(browser_out)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], max(left, 0))
            if not ready:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, session: str | None = None, timeout: float = 30, **params):
        self._next_id += 1
        command = {"id": self._next_id, "method": method, "params": params}
        if session:
            command["sessionId"] = session
        os.write(self._to_child, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            message = self._read_message(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for n, message in enumerate(self.events):
                if message.get("method") == event:
                    return self.events.pop(n)
            self.events.append(self._read_message(deadline))

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError, ConnectionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_child)
        os.close(self._from_child)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The seed 003 note, loaded; yields (browser, session, document node id)."""
    notes = tmp_path_factory.mktemp("notes")
    script = os.path.join(ROOT, "examples", "seed_003_matmul_index.py")
    done = subprocess.run([sys.executable, script, str(notes)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert done.returncode == 0, done.stderr
    html = notes / "seed_003_matmul_index.html"
    browser = Browser(str(tmp_path_factory.mktemp("profile")))
    try:
        target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        session = browser.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        browser.send("Page.enable", session)
        browser.send("Page.navigate", session, url=html.as_uri())
        browser.wait_for("Page.loadEventFired")
        document = browser.send("DOM.getDocument", session, depth=-1)["root"]["nodeId"]
        yield browser, session, document
    finally:
        browser.close()


def select_all(page, selector: str, node: int | None = None) -> list[int]:
    browser, session, document = page
    return browser.send("DOM.querySelectorAll", session, nodeId=node or document,
                        selector=selector)["nodeIds"]


def box(page, node: int) -> dict:
    """The laid-out content box of a node: left, top, width, height (CSS pixels)."""
    browser, session, _ = page
    quad = browser.send("DOM.getBoxModel", session, nodeId=node)["model"]["border"]
    xs, ys = quad[0::2], quad[1::2]
    return {"left": min(xs), "top": min(ys), "width": max(xs) - min(xs),
            "height": max(ys) - min(ys), "bottom": max(ys)}


def test_fractions_are_stacked(page):
    fractions = select_all(page, "mfrac")
    assert len(fractions) >= 15                      # ∂y/∂A_kl and friends in every step
    for frac in fractions:
        whole = box(page, frac)
        numerator, denominator = (box(page, n) for n in select_all(page, ":scope > *", frac))
        assert whole["height"] > 0 and whole["width"] > 0
        assert numerator["height"] > 0 and denominator["height"] > 0
        assert numerator["bottom"] <= denominator["top"] + 1       # above, not beside
        assert whole["height"] >= numerator["height"] + denominator["height"] - 1


def test_subscripts_are_lowered_and_smaller(page):
    subscripts = select_all(page, "td.rhs msub")
    assert len(subscripts) >= 20
    checked = 0
    for sub in subscripts:
        base, script = (box(page, n) for n in select_all(page, ":scope > *", sub))
        if base["height"] == 0 or script["height"] == 0:
            continue
        assert script["top"] + script["height"] / 2 > base["top"] + base["height"] / 2
        assert script["height"] < base["height"] * 1.05 or script["width"] > base["width"]
        checked += 1
    assert checked >= 20


def test_sums_carry_their_indices_below(page):
    sums = select_all(page, "munder")
    assert len(sums) >= 6                            # Σ_k, Σ_ij, Σ_p, Σ_j in each step
    for under in sums:
        operator, index = (box(page, n) for n in select_all(page, ":scope > *", under))
        assert operator["height"] > 0 and index["height"] > 0
        assert index["top"] >= operator["top"] + operator["height"] / 2


def test_the_page_renders_and_a_screenshot_is_taken(page, tmp_path):
    browser, session, _ = page
    maths = select_all(page, "math")
    assert maths and all(box(page, m)["height"] > 0 for m in maths[:40])
    png = base64.b64decode(browser.send("Page.captureScreenshot", session,
                                        format="png")["data"])
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    keep = os.environ.get("MATCALC_SCREENSHOT")
    with open(keep or tmp_path / "note.png", "wb") as handle:
        handle.write(png)
