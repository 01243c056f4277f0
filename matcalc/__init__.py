"""matcalc: symbolic matrix calculus — gradients in matrix form, derived the way the notes do.

>>> import matcalc as mc
>>> res = mc.derive("trace(A @ X @ B)", wrt="X",
...                 shapes={"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")})
>>> str(res.gradient)
'A.T @ B.T'
"""

from .api import (Derivation, Matrix, MatrixDerivative, Scalar, TensorDerivative, Vector, abs,
                  backward, cos,
                  derive, det,
                  diag, dim, exp, eye, grad, hessian, hvp, inv, jacobian, log, logdet, logsumexp,
                  mean, norm, norm1, ones, relu, sigmoid, sign, sin, softmax, softplus, sqrt, step,
                  sum, tanh, trace)
from .passes import BackwardCode
from .check import CheckReport
from .errors import (CheckError, DomainError, MatcalcError, ParseError, ShapeError,
                     UnsupportedError)
from .expr import Node
from .parse import parse
from .printing.latex import to_latex, to_mathml
from .printing.text import to_text
from .simplify import simplify

__version__ = "0.1.0"

__all__ = [
    "Derivation", "MatrixDerivative", "TensorDerivative", "jacobian", "hessian", "hvp", "Matrix", "Scalar", "Vector", "abs", "cos", "derive", "dim", "exp", "eye",
    "grad", "log", "mean", "ones", "relu", "sigmoid", "sign", "sin", "softplus", "sqrt", "step",
    "sum", "tanh", "trace", "det", "logdet", "inv", "norm", "norm1", "diag", "softmax",
    "logsumexp", "CheckReport", "CheckError", "DomainError", "MatcalcError",
    "ParseError", "ShapeError", "UnsupportedError", "Node", "parse", "to_latex", "to_mathml",
    "to_text", "simplify", "__version__", "backward", "BackwardCode",
]
