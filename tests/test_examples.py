"""Every script in examples/ runs to completion."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py"))


@pytest.mark.parametrize("script", EXAMPLES)
def test_example_runs(script, tmp_path):
    result = subprocess.run([sys.executable, os.path.join("examples", script), str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr
    assert "numeric check PASSED" in result.stdout
    if script.startswith("seed_"):          # each seed example writes its note, both formats
        stem = script[:-3]
        assert (tmp_path / f"{stem}.md").read_text(encoding="utf-8").startswith("# Gradient")
        assert "<math" in (tmp_path / f"{stem}.html").read_text(encoding="utf-8")


def test_there_is_an_example_for_every_seed_note():
    assert sorted(s[:8] for s in EXAMPLES if s.startswith("seed_")) == [
        f"seed_00{n}" for n in range(5)]
