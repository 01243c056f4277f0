"""The Quickstart in Python: derive, print, generate code, check.

Run: python examples/quickstart.py
"""

import numpy as np

import matcalc as mc

# A tanh layer over a batch of m examples (columns), squared error, mean over the batch.
shapes = {"W": ("n", "d"), "X": ("d", "m"), "b": ("n",), "Y": ("n", "m")}
res = mc.derive("sum((tanh(W @ X + b) - Y)**2) / m", wrt=["W", "b"], shapes=shapes)

print(res.text())
print()
for equation in res.equations():
    print(equation)
print()
print(res.numpy_source())
print(res.check(n=4, d=3, m=5))

# Use the generated function on data.
rng = np.random.default_rng(0)
W, X = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
b, Y = rng.standard_normal(4), rng.standard_normal((4, 5))
dW, db = res.numpy_function()(W=W, X=X, b=b, Y=Y)
print("dW:", dW.shape, "db:", db.shape)
