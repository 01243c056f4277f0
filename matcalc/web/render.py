"""What the web page shows for one request, computed from the public API (runs in a worker).

Contract: ``compute(state)`` derives what a ``PageState`` asks for and returns a plain ``dict``
(strings, numbers, booleans, lists: picklable and JSON-ready) with the sections of the page, each
rendered from what ``Derivation`` itself returns, so that what the API adds to its output later
shows up here unchanged:

- ``result``: ``text()`` and ``equations()`` (LaTeX), each equation also as MathML;
- ``steps``: ``steps().html_fragment()`` with each block's ``<section>`` made a collapsible
  ``<details>`` (the heading its ``<summary>``), the note's own ``<style>`` left out;
- ``code``: ``numpy_source()``;
- ``check``: ``check()``'s verdict, worst relative error and report;
- ``notes``: ``steps().render(...)`` as LaTeX, Markdown and HTML, for downloading.

Bad input gives ``{"ok": False, "error": message}``, the message as the command line prints it
(one line, then the text and a caret under the offending part for a syntax error). A section
that fails on its own (a check outside the function's domain) carries its own ``error`` and the
rest is still shown. An exception that is not a ``MatcalcError`` becomes a one-line message too:
never a traceback.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from typing import Callable

from latex2mathml.converter import convert as latex_to_mathml

from ..errors import MatcalcError
from .state import PageState

#: Note formats offered for download: format -> (``Steps.render`` name, file extension).
NOTE_FORMATS = {"latex": ("latex", "tex"), "markdown": ("markdown", "md"), "html": ("html", "html")}
#: A note of at most this many blocks opens with every block expanded; a longer one with its
#: first and last (the expression and the result).
OPEN_BLOCKS = 8


def compute(state: PageState) -> dict:
    """Everything the page shows for ``state``, or ``{"ok": False, "error": ...}``.

    >>> page = compute(PageState("trace(A @ X @ B)", wrt=("X",),
    ...                          shapes=(("A", ("n", "n")), ("X", ("n", "n")), ("B", ("n", "n")))))
    >>> page["result"]["text"], page["check"]["verdict"]
    ('A.T @ B.T', 'PASSED')
    """
    try:
        res = state.run()
        result = {"text": res.text(), "latex": list(res.equations())}
        result["mathml"] = [latex_to_mathml(eq, display="block") for eq in result["latex"]]
    except Exception as err:                      # noqa: BLE001 — every failure is one line
        return {"ok": False, "error": message(err), "kind": type(err).__name__}
    page = {"ok": True, "title": state.describe(), "result": result}
    page["code"] = _section(lambda: {"source": res.numpy_source()})
    page["check"] = _section(lambda: _check(res, state))
    page["steps"], page["notes"] = _steps(res)
    return page


def message(err: BaseException) -> str:
    """What the page says about an exception: a ``MatcalcError`` as the command line prints it,
    anything else in one line that names it (a bug in matcalc, or a limit of Python's)."""
    if isinstance(err, MatcalcError):
        return str(err)
    if isinstance(err, RecursionError):
        return "the expression is nested too deeply for this derivation (Python's recursion limit)"
    if isinstance(err, MemoryError):
        return "the derivation ran out of memory"
    first = (str(err).splitlines() or [""])[0][:200]
    return (f"matcalc failed on this input with an internal error ({type(err).__name__}"
            f"{': ' + first if first else ''}); please report it with the link to this page")


def _section(build: Callable[[], dict]) -> dict:
    try:
        return {"error": None, **build()}
    except Exception as err:                      # noqa: BLE001
        return {"error": message(err)}


def _check(res, state: PageState) -> dict:
    report = res.check(seed=state.seed, raise_on_failure=False, **dict(state.sizes))
    worst = report.worst if math.isfinite(report.worst) else None
    return {"ok": bool(report.ok), "verdict": "PASSED" if report.ok else "FAILED",
            "worst": worst, "report": str(report)}


def _steps(res) -> tuple[dict, dict]:
    try:
        steps = res.steps()
        fragment = steps.html_fragment()
    except Exception as err:                      # noqa: BLE001
        return {"error": message(err)}, {"error": message(err)}
    html, blocks = collapsible(fragment)
    notes = _section(lambda: {fmt: steps.render(name) for fmt, (name, _) in NOTE_FORMATS.items()})
    return {"error": None, "title": steps.title, "html": html, "blocks": blocks}, notes


def collapsible(fragment: str) -> tuple[str, int]:
    """The note's HTML fragment with each block a ``<details>`` element; and the block count.

    The fragment is an ``<article>`` (a title, then a ``<section>`` per block, each opening
    with an ``<h2>`` heading) after a ``<style>`` element, which is left out (the page's style
    sheet styles the note; its security policy admits no inline style). A fragment of another
    form is passed on whole, as one block.

    >>> html, n = collapsible('<div><style>p {}</style><article class="matcalc-note"><h1>T</h1>'
    ...                       '<section><h2>Step 1</h2><p>x</p></section></article></div>')
    >>> n
    1
    >>> print(html.replace("><", ">\\n<"))
    <div class="matcalc-note">
    <details class="block" open="open">
    <summary>Step 1</summary>
    <div class="block-body">
    <p>x</p>
    </div>
    </details>
    </div>
    """
    try:
        root = ET.fromstring(fragment)
    except ET.ParseError:
        return fragment, 1          # the browser reads it; the page's policy ignores its style
    for el in root.iter():            # ElementTree names MathML's tags {namespace}tag
        if el.tag.startswith("{"):
            namespace, el.tag = el.tag[1:].split("}", 1)
            if el.tag == "math":
                el.set("xmlns", namespace)
    for style in root.findall("style"):
        root.remove(style)
    article = root.find("article")
    sections = article.findall("section") if article is not None else []
    if not sections or any(s.find("h2") is None for s in sections):
        return ET.tostring(root, encoding="unicode", method="html"), 1
    note = ET.Element("div", {"class": "matcalc-note"})
    for n, section in enumerate(sections):
        details = ET.SubElement(note, "details", {"class": "block"})
        if len(sections) <= OPEN_BLOCKS or n in (0, len(sections) - 1):
            details.set("open", "open")
        heading = section.find("h2")
        summary = ET.SubElement(details, "summary")
        summary.text = heading.text
        summary.extend(list(heading))
        body = ET.SubElement(details, "div", {"class": "block-body"})
        body.extend([child for child in section if child is not heading])
    return ET.tostring(note, encoding="unicode", method="html"), len(sections)
