"""Derived rules kept between processes: read back equal to the derivation, keyed, optional."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

import matcalc as mc
from matcalc import rules

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = {"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n"), "x": ("n",), "W": ("m", "n")}
#: Texts that need rules of many kinds: bilinear, elementwise, reductions, hand rules.
TEXTS = ["trace(A @ X @ B)", "sum(tanh(W @ x))", "logdet(X) + trace(inv(X) @ A)",
         "sum(softmax(W @ x) * log(sigmoid(W @ x)))", "det(X) * norm(X @ x) ** 2",
         "sum(X * X.T) + sum(x.T @ X, axis=1)"]


@pytest.fixture
def fresh_cache(tmp_path):
    directory = tmp_path / "rules"
    previous = rules.use_disk_cache(str(directory))
    yield directory
    rules.DISK = previous
    rules._CACHE.clear()


def derive_all():
    for text in TEXTS:
        mc.derive(text, "X" if "X" in text else "W", shapes=SHAPES)
    return dict(rules._CACHE)


def test_rules_read_back_equal_the_rules_derived_afresh(fresh_cache):
    derived = derive_all()                       # derived, and written to the directory
    assert len(os.listdir(fresh_cache)) == len(derived) > 10
    rules._CACHE.clear()
    read = derive_all()                          # read back from the directory
    assert read.keys() == derived.keys()
    for key, rule in derived.items():
        stored = read[key]
        assert stored is not rule
        assert stored.template is rule.template and stored.placeholders == rule.placeholders
        # the index-notation record too, read on demand (the steps printer's input)
        assert (stored.entry, stored.derivative, stored.reduced, stored.log) == (
            rule.entry, rule.derivative, rule.reduced, rule.log)
        assert stored == rule


def test_each_stored_rule_is_what_the_derivation_gives(fresh_cache):
    """Rebuild: derive every cached rule again without the cache and compare."""
    derive_all()
    read = {}
    for name in os.listdir(fresh_cache):
        with open(fresh_cache / name, "rb") as handle:
            key, rule = pickle.load(handle)
        read[key] = rule
    rules._CACHE.clear()
    rules.DISK = rules.DiskCache(None)
    rules.DISK._ready = False                    # no cache: derive every rule afresh
    rebuilt = derive_all()
    assert rebuilt.keys() == read.keys()
    for key in read:
        assert read[key] == rebuilt[key], key


def test_a_stored_rule_is_used_and_a_damaged_file_is_derived_again(fresh_cache):
    res = mc.derive("trace(A @ X @ B)", "X", shapes=SHAPES)
    assert str(res.gradient) == "A.T @ B.T"
    for name in os.listdir(fresh_cache):
        (fresh_cache / name).write_bytes(b"not a pickle")
    rules._CACHE.clear()
    assert str(mc.derive("trace(A @ X @ B)", "X", shapes=SHAPES).gradient) == "A.T @ B.T"


def test_a_rule_stored_under_another_key_is_not_used(fresh_cache):
    mc.derive("trace(A @ X @ B)", "X", shapes=SHAPES)
    key = next(k for k in rules._CACHE if k[0].__name__ == "MatMul" and k[3] == 0)
    other = next(k for k in rules._CACHE if k[0].__name__ == "MatMul" and k[3] == 1)
    with open(rules.DISK.path(key), "wb") as handle:      # operand 1's rule under operand 0's name
        pickle.dump((other, rules._CACHE[other]), handle)
    assert rules.DISK.load(key) is None


def test_an_unwritable_place_means_no_cache_silently(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    previous = rules.use_disk_cache(str(blocker / "rules"))     # under a file: cannot exist
    try:
        assert str(mc.derive("sum(tanh(W @ x))", "W", shapes=SHAPES).gradient) == \
            "(1 - tanh(W @ x) ** 2) @ x.T"
        assert rules.DISK.usable() is False
    finally:
        rules.DISK = previous
        rules._CACHE.clear()


def test_a_directory_others_may_write_is_not_read(tmp_path):
    directory = tmp_path / "shared"
    directory.mkdir(mode=0o777)
    os.chmod(directory, 0o777)
    assert rules.DiskCache(str(directory)).usable() is False


def test_the_cache_is_keyed_by_version_and_the_rule_sources(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    place = rules.default_directory()
    assert place.startswith(str(tmp_path / "matcalc" / f"rules-{mc.__version__}-"))
    assert place.endswith(rules.source_hash())
    monkeypatch.setattr(rules, "__version__", "9.9.9")
    assert rules.source_hash() not in place and "9.9.9" in rules.default_directory()


def test_a_fresh_process_writes_then_reads_the_user_cache(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": ROOT}
    probe = ("import sys, matcalc as mc\n"
             "from matcalc import rules\n"
             "res = mc.derive('sum(tanh(W @ x))', 'W', shapes={'W': ('m', 'n'), 'x': ('n',)})\n"
             "print(res.gradient, len(rules._CACHE), 'sympy.tensor.tensor' in sys.modules)")
    runs = [subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           env=env, cwd=ROOT, timeout=120) for _ in range(2)]
    (place,) = os.listdir(tmp_path / "matcalc")
    stored = os.listdir(tmp_path / "matcalc" / place)
    gradient = "(1 - tanh(W @ x) ** 2) @ x.T"
    # the first process derives its rules (SymPy's sums pull in sympy.tensor) and keeps them;
    # the second reads them, and never needs that part of SymPy
    assert runs[0].stdout == f"{gradient} {len(stored)} True\n", runs[0].stderr
    assert runs[1].stdout == f"{gradient} {len(stored)} False\n", runs[1].stderr
