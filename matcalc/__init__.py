"""matcalc: symbolic matrix calculus — gradients in matrix form, derived the way the notes do.

>>> import matcalc as mc
>>> res = mc.derive("trace(A @ X @ B)", wrt="X",
...                 shapes={"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")})
>>> str(res.gradient)
'A.T @ B.T'
"""

from .api import FUNCTIONS as _FUNCTIONS
from .api import (Derivation, Matrix, MatrixDerivative, Scalar, TensorDerivative, Vector,
                  backward, derive, dim, from_sympy, grad, hessian, hvp, jacobian, to_sympy)
from .printing.module import BackwardCode
from .check import CheckReport
from .errors import (ArgumentError, CheckError, DomainError, MatcalcError, ParseError,
                     ShapeError, UnsupportedError)
from .expr import Node
from .parse import parse
from .printing.latex import to_latex, to_mathml
from .printing.text import to_text
from .simplify import simplify

__version__ = "0.1.0"

# every operation text can call is a function of the package: mc.exp, mc.sum, mc.trace, ...
globals().update(_FUNCTIONS)

__all__ = [
    "Derivation", "MatrixDerivative", "TensorDerivative", "jacobian", "hessian", "hvp", "Matrix",
    "Scalar", "Vector", "derive", "dim", "grad", "CheckReport", "CheckError", "DomainError",
    "MatcalcError", "ParseError", "ShapeError", "UnsupportedError", "Node", "parse", "to_latex",
    "to_mathml", "to_text", "simplify", "__version__", "backward", "BackwardCode",
    "from_sympy", "to_sympy", "ArgumentError",
    *_FUNCTIONS,
]
