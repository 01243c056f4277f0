"""One SymPy attempt for benchmarks/run.py: differentiate an L-layer network with
MatrixSymbol.diff by every weight (and bias), and print
"ok|error <derived> <asked> <CPU seconds after SymPy is imported> [why]".

    python benchmarks/sympy_attempt.py tanh 2      # the matcalc benchmark's model
    python benchmarks/sympy_attempt.py tanh-sum 2  # the same network, loss sum(A_L)
    python benchmarks/sympy_attempt.py linear 8    # W_L @ ... @ W1 @ X, squared error / m

The tanh network is written as SymPy spells it: b 1^T with OneMatrix for the bias, applyfunc
for tanh, Trace(D.T D) for the sum of squares.
"""

import sys
import time

from sympy import MatrixSymbol, OneMatrix, Trace, symbols, tanh


def model(kind: str, layers: int):
    m = symbols("m", integer=True, positive=True)
    dims = [symbols("n", integer=True, positive=True)] + \
        [symbols(f"h{k}", integer=True, positive=True) for k in range(1, layers)] + \
        [symbols("c", integer=True, positive=True)]
    X, Y = MatrixSymbol("X", dims[0], m), MatrixSymbol("Y", dims[-1], m)
    A, params = X, []
    for k in range(1, layers + 1):
        W = MatrixSymbol(f"W{k}", dims[k], dims[k - 1])
        params.append(W)
        if kind == "linear":
            A = W * A
            continue
        b = MatrixSymbol(f"b{k}", dims[k], 1)
        params.append(b)
        A = (W * A + b * OneMatrix(1, m)).applyfunc(tanh)
    if kind == "tanh-sum":
        return Trace(OneMatrix(m, dims[-1]) * A), params
    D = A - Y
    return Trace(D.T * D) / m, params


def main(kind: str, layers: int) -> None:
    start = time.process_time()
    loss, params = model(kind, layers)
    derived, failure = 0, ""
    for p in params:
        try:
            loss.diff(p)
            derived += 1
        except Exception as err:          # SymPy's own failures are the measurement
            failure = failure or f"{type(err).__name__}: {err}"[:70]
    status = "ok" if derived == len(params) else "error"
    print(f"{status} {derived} {len(params)} {time.process_time() - start:.3f} {failure}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
