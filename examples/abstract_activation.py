"""Seed note 002, the general case: an activation g named but never defined.

    z[l] = W[l] a[l-1] + b[l],   a[l] = g(z[l])   "where g is an element wise function"

The note's result for a hidden layer: dL/dW[l] = ((W[l+1]ᵀ δ[l+1]) ⊙ g'(z[l])) a[l-1]ᵀ and
dL/db[l] = (W[l+1]ᵀ δ[l+1]) ⊙ g'(z[l]). matcalc derives it with g left abstract
(functions=["g"]), prints g', and generates code that takes g and g_prime as arguments; the
numeric check runs it with g = sin unless given a pair, here tanh and 1 - tanh².

Run: python examples/abstract_activation.py
"""

import numpy as np

import matcalc as mc

shapes = {"W1": ("h", "n"), "x": ("n",), "b1": ("h",), "W2": ("k", "h"), "b2": ("k",),
          "y": ("k",)}
# two layers, the second linear: delta2 = W2 g(z1) + b2 - y is the output's error
res = mc.derive("sum((W2 @ g(W1 @ x + b1) + b2 - y) ** 2) / 2", wrt=["W1", "b1"],
                shapes=shapes, functions=["g"])
print(res)
print()
print(res.numpy_source())

report = res.check(functions={"g": np.tanh, "g_prime": lambda z: 1 - np.tanh(z) ** 2})
print(report)
