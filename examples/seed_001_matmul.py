"""Seed note 001: D = W X with an upstream gradient dD, then dW = dD X^T and dX = W^T dD.

The note computed these by hand with NumPy; matcalc derives them, writes the function, and writes
the derivation as a note (Markdown and HTML).
Run: python examples/seed_001_matmul.py [OUTPUT_DIR]     (default: a new temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import matcalc as mc

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="matcalc-"))
out.mkdir(parents=True, exist_ok=True)

res = mc.derive("W @ X", wrt=["W", "X"], shapes={"W": (5, 10), "X": (10, 3)})
print(res.text())                  # d/dW = G @ X.T, d/dX = W.T @ G
print(res.numpy_source())

rng = np.random.default_rng(0)
W = rng.standard_normal((5, 10))
X = rng.standard_normal((10, 3))
dD = rng.standard_normal((5, 3))   # the gradient arriving from above, the note's dD
dW, dX = res.numpy_function()(W=W, X=X, G=dD)
assert np.allclose(dW, dD.dot(X.T)) and np.allclose(dX, W.T.dot(dD))
print("matches the note's dD.dot(X.T) and W.T.dot(dD)")

steps = res.steps()
(out / "seed_001_matmul.md").write_text(steps.markdown(), encoding="utf-8")
(out / "seed_001_matmul.html").write_text(steps.html(), encoding="utf-8")
print(f"notes written to {out}")
print(res.check())
