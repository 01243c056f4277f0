"""Seed note 003: the derivative through a matrix product, by index sums.

The note writes Z_ij = Σ_k a_ik b_kj, differentiates one entry, sees that ∂z_ij/∂a_kl is zero
unless i = k, sums what is left into Σ_j G_kj (bᵀ)_jl — a matrix product — and concludes
∂y/∂a = G·bᵀ and ∂y/∂b = aᵀ·G, with G a matrix of ones when no gradient is passed
("gradients = None"). matcalc's steps are that derivation, read off what its engine did.

Run: python examples/seed_003_matmul_index.py [OUTPUT_DIR]     (default: a new temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import matcalc as mc

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="matcalc-"))
out.mkdir(parents=True, exist_ok=True)

A = mc.Matrix("A", "m", "k"); B = mc.Matrix("B", "k", "n")
res = mc.grad(A @ B, [A, B])
steps = res.steps()
print(steps)                                 # the derivation, step by step

# "gradients = None": the generated function's G defaults to ones.
rng = np.random.default_rng(0)
a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
da, db = res.numpy_function()(A=a, B=b)      # no G given
ones = np.ones((2, 4))
assert np.allclose(da, ones @ b.T) and np.allclose(db, a.T @ ones)
print("with no G: dA = ones @ B.T and dB = A.T @ ones, as the note's [1] b^T")

(out / "seed_003_matmul_index.md").write_text(steps.markdown(), encoding="utf-8")
(out / "seed_003_matmul_index.html").write_text(steps.html(), encoding="utf-8")
print(f"notes written to {out}")
print(res.check())
