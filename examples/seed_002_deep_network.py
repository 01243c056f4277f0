"""Seed note 002: an L-layer network in the column convention, m examples as columns.

    z[l] = W[l] a[l-1] + b[l],   a[l] = g(z[l]),   J = (1/m) Σ_i L(a[L])

The note's recursion: dW[l] = (1/m) dZ[l] a[l-1]ᵀ, db[l] = (1/m) Σ over the examples of dZ[l],
dZ[l] = dA[l] * g'(z[l]) — and dA[l] = W[l]ᵀ δ[l+1], where its summary writes W[l] for the weight
of the *next* layer: it must be W[l+1] (the weight that consumes a[l]). matcalc derives the
recursion in one reverse sweep (the steps show each δ), and shows that W[l+1]ᵀ δ[l+1] is right
and that W[l]ᵀ δ[l+1] does not even fit.

Run: python examples/seed_002_deep_network.py [OUTPUT_DIR]     (default: a new temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import matcalc as mc

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="matcalc-"))
out.mkdir(parents=True, exist_ok=True)

# Three layers: n inputs, m1 and m2 hidden units, one output; m examples as columns.
X = mc.Matrix("X", "n", "m"); Y = mc.Matrix("Y", 1, "m")
W1 = mc.Matrix("W1", "m1", "n"); b1 = mc.Vector("b1", "m1")
W2 = mc.Matrix("W2", "m2", "m1"); b2 = mc.Vector("b2", "m2")
W3 = mc.Matrix("W3", 1, "m2"); b3 = mc.Vector("b3", 1)
z1 = W1 @ X + b1;  a1 = mc.tanh(z1)
z2 = W2 @ a1 + b2; a2 = mc.tanh(z2)
z3 = W3 @ a2 + b3; o = mc.sigmoid(z3)
J = mc.sum((o - Y) ** 2) / mc.dim("m")

res = mc.grad(J, [W1, b1, W2, b2, W3, b3, a1, z2])
steps = res.steps()

# The δ recursion as the steps show it: the intermediate values are named Z_1, Z_2, ... (z[1] is
# Z_3, a[1] is Z_4, z[2] is Z_7, ...) and each result is written with the δ of the layer above.
text = steps.text()
setting = text[text.index("The expression"):text.index("Each intermediate")]
print(setting.rstrip())
print()
for line in text.splitlines():
    if line.lstrip().startswith("result ") and "=" in line:
        print(line.strip())
print()

# The note's eq3 for l = 1: dJ/da[1] = W[l+1]ᵀ δ[l+1], with δ[2] = dJ/dz[2].
rng = np.random.default_rng(0)
data = {"X": rng.standard_normal((4, 6)), "Y": rng.random((1, 6)),
        "W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(3),
        "W2": rng.standard_normal((5, 3)), "b2": rng.standard_normal(5),
        "W3": rng.standard_normal((1, 5)), "b3": rng.standard_normal(1)}
gradients = res.numpy_function()(**data)
dA1, dZ2 = gradients[-2], gradients[-1]
assert np.allclose(dA1, data["W2"].T @ dZ2)
print("dJ/da[1] = W[2]ᵀ δ[2]: matcalc's gradient through a[1] is W2.T @ (its gradient through "
      "z[2])")
try:
    W1.T @ (W2 @ a1 + b2)      # the summary's W[l]ᵀ δ[l+1], shapes only
except mc.ShapeError as err:
    print(f"the summary's W[l]ᵀ δ[l+1] does not fit: {err}")

(out / "seed_002_deep_network.md").write_text(steps.markdown(), encoding="utf-8")
(out / "seed_002_deep_network.html").write_text(steps.html(), encoding="utf-8")
print(f"notes written to {out}")
print(res.check())
