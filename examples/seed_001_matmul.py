"""Seed note 001: D = W X with an upstream gradient dD, then dW = dD X^T and dX = W^T dD.

The note computed these by hand with NumPy; matcalc derives them and writes the function.
Run: python examples/seed_001_matmul.py
"""

import numpy as np

import matcalc as mc

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
print(res.check())
