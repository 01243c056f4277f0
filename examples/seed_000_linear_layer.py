"""Seed note 000: a linear layer a = W x + b, y_hat = f(a), L = |y - y_hat|.

The note states dL/dW = dL/da · xᵀ and dL/dx = Wᵀ · dL/da, and that the activation's derivative
is elementwise. matcalc derives all three (with f = tanh), shows the δ recursion step by step, and
writes the derivation as a note (Markdown and HTML).

Run: python examples/seed_000_linear_layer.py [OUTPUT_DIR]     (default: a new temporary folder)
"""

import sys
import tempfile
from pathlib import Path

import matcalc as mc

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="matcalc-"))
out.mkdir(parents=True, exist_ok=True)

W = mc.Matrix("W", "n", "d"); x = mc.Vector("x", "d"); b = mc.Vector("b", "n")
y = mc.Vector("y", "n")
a = W @ x + b                                # the note's a
L = mc.sum(mc.abs(y - mc.tanh(a)))           # |y - y_hat| summed over the outputs

res = mc.grad(L, [W, x, a])
dW, dx, da = res.gradients
print("dL/da =", da)                         # the elementwise step: sign(...) * tanh'(a)
print("dL/dW =", dW)                         # dL/da @ x.T
print("dL/dx =", dx)                         # W.T @ dL/da

# The steps name dL/da δ_2 (a is Z_2 there) and end with the note's two formulas.
steps = res.steps()
text = steps.text()
assert "∂f/∂W = δ_1 @ x.T" in text and "∂f/∂x = W.T @ δ_1" in text
for line in text.splitlines():
    if line.lstrip().startswith("result"):
        print(line.strip())

(out / "seed_000_linear_layer.md").write_text(steps.markdown(), encoding="utf-8")
(out / "seed_000_linear_layer.html").write_text(steps.html(), encoding="utf-8")
print(f"notes written to {out}")
print(res.check())
