"""The reference: an L-layer tanh network's forward and backward pass, written by hand in NumPy
the way seed note 002 writes it (column convention, one example per column, 1/m).

    Z[l] = W[l] @ A[l-1] + b[l],  A[l] = tanh(Z[l]),  J = (1/m) sum((A[L] - Y) ** 2)
    dZ[L] = 2 (A[L] - Y) * (1 - A[L] ** 2)
    dW[l] = (1/m) dZ[l] @ A[l-1].T,  db[l] = (1/m) sum(dZ[l], axis=1)
    dZ[l-1] = (W[l].T @ dZ[l]) * (1 - A[l-1] ** 2)

The forward pass keeps the activations (tanh' = 1 - tanh^2 needs only them), as a careful
hand-written pass does.
"""

from __future__ import annotations

import numpy as np


def forward(weights, biases, X, Y):
    """(J, cache): the loss and the activations A[0] = X, ..., A[L]."""
    A = X
    activations = [X]
    for W, b in zip(weights, biases):
        A = np.tanh(W @ A + b)
        activations.append(A)
    m = X.shape[1]
    return np.sum((A - Y) ** 2) / m, (activations, Y)


def backward(weights, cache):
    """[(dW[1], db[1]), ..., (dW[L], db[L])] from the cache of ``forward``."""
    activations, Y = cache
    m = Y.shape[1]
    A = activations[-1]
    dZ = 2 * (A - Y) * (1 - A ** 2)
    grads = []
    for layer in range(len(weights) - 1, -1, -1):
        A_prev = activations[layer]
        dW = (1 / m) * (dZ @ A_prev.T)
        db = (1 / m) * np.sum(dZ, axis=1, keepdims=True)
        grads.append((dW, db))
        if layer > 0:
            dZ = (weights[layer].T @ dZ) * (1 - A_prev ** 2)
    return grads[::-1]
