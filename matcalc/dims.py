"""Symbolic dimensions and shapes.

Contract: a dimension is a SymPy ``Symbol`` (positive integer) or a SymPy ``Integer``; a shape is
a pair ``(rows, cols)``. Vectors are columns (n x 1); 1 x 1 is a scalar. ``format_shape`` prints a
shape in the user's names.
"""

from __future__ import annotations

import re

import sympy

from .errors import ShapeError

Dim = sympy.Expr
Shape = tuple  # (rows, cols), each a Dim

ONE = sympy.Integer(1)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def dim(name: str | int | sympy.Expr) -> Dim:
    """Return the dimension called ``name`` (a symbol) or of fixed size ``name`` (an integer).

    >>> dim("n"), dim(3)
    (n, 3)
    """
    if isinstance(name, sympy.Expr):
        if isinstance(name, sympy.Integer) and name >= 1:
            return name
        if isinstance(name, sympy.Symbol):
            return sympy.Symbol(name.name, integer=True, positive=True)
        raise ShapeError(f"a dimension must be a name or a positive integer, not {name}")
    if isinstance(name, bool):
        raise ShapeError(f"a dimension must be a name or a positive integer, not {name!r}")
    if isinstance(name, int):
        if name < 1:
            raise ShapeError(f"a dimension must be a positive integer, not {name}")
        return sympy.Integer(name)
    if isinstance(name, str):
        text = name.strip()
        if text.isdigit():
            return dim(int(text))
        if not _NAME.match(text):
            raise ShapeError(f"{name!r} is not a valid dimension name (letters, digits, _)")
        return sympy.Symbol(text, integer=True, positive=True)
    raise ShapeError(f"a dimension must be a name or a positive integer, not {name!r}")


def is_one(d: Dim) -> bool:
    """True for a dimension of fixed size 1 (the axis of a vector or scalar that is not there)."""
    return d == ONE


def format_dim(d: Dim) -> str:
    return str(d)


def format_shape(shape: Shape) -> str:
    """``(n, m)`` → ``"n×m"``; vectors and scalars are printed as such."""
    rows, cols = shape
    if is_one(rows) and is_one(cols):
        return "scalar"
    if is_one(cols):
        return f"{format_dim(rows)}-vector ({format_dim(rows)}×1)"
    return f"{format_dim(rows)}×{format_dim(cols)}"


def dims_of(shape: Shape) -> tuple:
    """The symbolic dimensions appearing in ``shape``, in order, without repeats."""
    out = []
    for d in shape:
        for s in sorted(d.free_symbols, key=lambda s: s.name):
            if s not in out:
                out.append(s)
    return tuple(out)
