"""Seed note 004: a 3-layer ReLU network in the row convention (x·W), softmax output, MSE loss.

    H1 = X W1, A1 = relu(H1), H2 = A1 W2, A2 = relu(H2), H3 = A2 W3, Y = softmax(H3) per row

The note's recursion is dW3 = A2ᵀ dZ3, dZ2 = dZ3 W3ᵀ ⊙ relu'(H2), dW2 = A1ᵀ dZ2, ... — matcalc
derives the same in the row convention. But the note takes dZ3 = dL/dY, assuming "the derivative
of softmax is a constant 1". It is not: dL/dH3 = Y ⊙ (Δ − rowsum(Δ ⊙ Y)) with Δ = dL/dY, and the
numeric check shows that matcalc's form is the derivative and the note's is not. The note also
writes dw322 = a22 · Δy1 where Δy2 is meant.

Run: python examples/seed_004_softmax_network.py [OUTPUT_DIR]     (default: a new temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import matcalc as mc

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="matcalc-"))
out.mkdir(parents=True, exist_ok=True)

# m examples as rows, 2 inputs, 2 hidden units per layer, 2 outputs (the note's picture).
X = mc.Matrix("X", "m", 2); Ylabel = mc.Matrix("Ylabel", "m", 2)     # inputs, labels
W1 = mc.Matrix("W1", 2, 2); W2 = mc.Matrix("W2", 2, 2); W3 = mc.Matrix("W3", 2, 2)
H1 = X @ W1;  A1 = mc.relu(H1)
H2 = A1 @ W2; A2 = mc.relu(H2)
H3 = A2 @ W3
# The softmax of each row (the note's output layer).
Y = mc.softmax(H3, axis=1)
L = mc.sum((Y - Ylabel) ** 2) / mc.dim("m")                 # MSE over the batch

res = mc.grad(L, [W3, W2, W1, H3, Y])
dW3, dW2, dW1, dH3, dY = res.gradients
steps = res.steps()
text = steps.text()
print(text[text.index("The expression"):text.index("Each intermediate")].rstrip())
print()
print("matcalc, row convention (A2 is Z_4, dZ3 = dL/dH3 is δ_5):")
for line in text.splitlines():
    if line.lstrip().startswith("result ") and "W" in line:
        print("  " + line.strip())          # dW = (the layer's input)ᵀ @ δ, as the note's dW3
print()

rng = np.random.default_rng(1)
data = {"X": rng.random((5, 2)), "Ylabel": rng.random((5, 2)),       # positive: every ReLU on
        "W1": rng.random((2, 2)), "W2": rng.random((2, 2)), "W3": rng.standard_normal((2, 2))}
g = res.numpy_function()(**data)
dL_dY, dL_dH3 = g[4], g[3]
# the forward pass, to write the softmax derivative by hand
a1 = np.maximum(data["X"] @ data["W1"], 0); a2 = np.maximum(a1 @ data["W2"], 0)
h3 = a2 @ data["W3"]
y = np.exp(h3) / np.exp(h3).sum(axis=1, keepdims=True)

# The softmax derivative, correctly: dL/dH3 = Y * (Δ - rowsum(Δ * Y)) — not Δ itself.
correct = y * (dL_dY - (dL_dY * y).sum(axis=1, keepdims=True))
assert np.allclose(dL_dH3, correct)
print("dL/dH3 = Y * (Δ - sum(Δ * Y, axis=1, keepdims=True)), Δ = dL/dY: matcalc's gradient, "
      f"max |difference| {np.abs(dL_dH3 - correct).max():.1e}")
print("the note's dL/dH3 = Δ (softmax' taken as 1) is off by up to "
      f"{np.abs(dL_dH3 - dL_dY).max():.3f}, on entries of size up to {np.abs(dL_dH3).max():.3f}")

# dW3 = A2ᵀ dZ3: entry (2, 2) — the note's w322, from a22 to output 2 — pairs a22 with output 2.
one = {**data, "X": data["X"][:1], "Ylabel": data["Ylabel"][:1]}   # one example, as the note
g1 = res.numpy_function()(**one)
a1 = np.maximum(one["X"] @ one["W1"], 0); a2 = np.maximum(a1 @ one["W2"], 0)
dz3 = g1[3]
assert np.isclose(g1[0][1, 1], a2[0, 1] * dz3[0, 1])
print(f"dw322 = a22 * dz3_2 = {a2[0, 1] * dz3[0, 1]:.4f} (matcalc: {g1[0][1, 1]:.4f}); "
      f"the note's a22 * dz3_1 would give {a2[0, 1] * dz3[0, 0]:.4f}")

(out / "seed_004_softmax_network.md").write_text(steps.markdown(), encoding="utf-8")
(out / "seed_004_softmax_network.html").write_text(steps.html(), encoding="utf-8")
print(f"notes written to {out}")
print(res.check())
