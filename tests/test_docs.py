"""The generated documentation pages are up to date with the code."""

import os
import runpy

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR = runpy.run_path(os.path.join(ROOT, "docs", "generate.py"))


@pytest.mark.parametrize("page", sorted(GENERATOR["PAGES"]))
def test_generated_page_is_current(page):
    with open(os.path.join(ROOT, "docs", page), encoding="utf-8") as f:
        committed = f.read()
    assert committed == GENERATOR["PAGES"][page](), \
        f"docs/{page} is stale: run python docs/generate.py"
