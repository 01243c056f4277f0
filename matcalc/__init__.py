"""matcalc: symbolic matrix calculus — gradients in matrix form, derived the way the notes do.

>>> import matcalc as mc
>>> res = mc.derive("trace(A @ X @ B)", wrt="X",
...                 shapes={"A": ("n", "n"), "X": ("n", "n"), "B": ("n", "n")})
>>> str(res.gradient)
'A.T @ B.T'

The public names load on first use (``import matcalc`` alone does not import SymPy), so the
command line's ``--help`` and ``--version`` answer at once; everything else is as if this file
imported the API eagerly.
"""

import importlib
import os
import sys
import types

from .version import __version__

#: Public name -> the module that defines it (the operations of the text syntax, mc.exp,
#: mc.sum, mc.trace, ..., come from ``matcalc.api.FUNCTIONS``).
_PUBLIC = {
    **dict.fromkeys(["Derivation", "Matrix", "MatrixDerivative", "Scalar", "TensorDerivative",
                     "Vector", "backward", "derive", "dim", "grad", "hessian", "hvp",
                     "jacobian", "from_sympy", "to_sympy"], "api"),
    "BackwardCode": "printing.module", "CheckReport": "check",
    **dict.fromkeys(["ArgumentError", "CheckError", "DomainError", "MatcalcError", "ParseError",
                     "ShapeError", "UnsupportedError"], "errors"),
    "Node": "expr", "parse": "parse", "to_latex": "printing.latex",
    "to_mathml": "printing.latex", "to_text": "printing.text", "simplify": "simplify",
}
_loaded = False


def _load() -> None:
    """Import the API and bind every public name here (once)."""
    global _loaded
    if _loaded:
        return
    api = importlib.import_module("matcalc.api")
    names = {name: getattr(importlib.import_module(f"matcalc.{module}"), name)
             for name, module in _PUBLIC.items()}
    names.update(api.FUNCTIONS)
    globals().update(names)
    globals()["__all__"] = [*_PUBLIC, "__version__", *api.FUNCTIONS]
    _loaded = True


def __getattr__(name: str):
    """A public name, loading the API on first use (PEP 562)."""
    if name.startswith("__") and name != "__all__" or (
            name not in _PUBLIC and _is_submodule(name)):
        # the import system asks for a submodule before importing it: not a public name
        raise AttributeError(f"module 'matcalc' has no attribute {name!r}")
    _load()
    try:
        return globals()[name]
    except KeyError:
        raise AttributeError(f"module 'matcalc' has no attribute {name!r}") from None


def _is_submodule(name: str) -> bool:
    here = os.path.dirname(__file__)
    return os.path.isfile(os.path.join(here, f"{name}.py")) or os.path.isfile(
        os.path.join(here, name, "__init__.py"))


def __dir__() -> list:
    _load()
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """The package module. Importing a submodule binds it on the package; where a submodule
    shares its name with a public function (``parse``, ``simplify``, ``jacobian``), the function
    keeps the name, as when this file imported the API eagerly."""

    def __setattr__(self, name: str, value) -> None:
        if name in _PUBLIC and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
