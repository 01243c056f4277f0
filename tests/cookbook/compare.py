"""Comparing matrix forms the way a reader compares them with the book.

``normal_form`` writes an expression as a sum of monomials with exact coefficients: matrix
products stay ordered (the order of factors matters, their grouping does not), elementwise
products are unordered, transposes are moved onto single factors ((AB)^T = B^T A^T), and sums
are expanded. Two forms with the same normal form differ only in the order of commutative terms,
in grouping, or in distributing a factor ((B + B^T) X and B X + B^T X) — not in any transpose,
factor order or operand. Everything that is not a sum, product, transpose or scalar multiple
(inv, det, trace, a function) is an atom, compared by the normal form of its arguments.
"""

from __future__ import annotations

import sympy

from matcalc import expr as E

Poly = dict      # monomial -> exact coefficient


def normal_form(node: E.Node) -> frozenset:
    """A hashable normal form of ``node``."""
    return frozenset((m, c) for m, c in _poly(node).items() if c != 0)


def _atom(key) -> Poly:
    return {("atom", key): sympy.Integer(1)}


def _add(p: Poly, q: Poly, sign=1) -> Poly:
    out = dict(p)
    for m, c in q.items():
        out[m] = out.get(m, 0) + sign * c
    return {m: c for m, c in out.items() if c != 0}


def _scale(p: Poly, c) -> Poly:
    return {m: c * v for m, v in p.items()}


def _factors(m, kind):
    return m[1] if m[0] == kind else (m,)


def _product(p: Poly, q: Poly, kind: str) -> Poly:
    out: Poly = {}
    for m1, c1 in p.items():
        for m2, c2 in q.items():
            fs = _factors(m1, kind) + _factors(m2, kind)
            if kind == "*":
                fs = tuple(sorted(fs, key=repr))
            m = fs[0] if len(fs) == 1 else (kind, fs)
            out[m] = out.get(m, 0) + c1 * c2
    return out


def _transpose_monomial(m):
    if m[0] == "@":
        return ("@", tuple(_transpose_monomial(f) for f in reversed(m[1])))
    if m[0] == "*":
        return ("*", tuple(sorted((_transpose_monomial(f) for f in m[1]), key=repr)))
    key = m[1]
    if isinstance(key, tuple) and key and key[0] == "T":
        return ("atom", key[1])
    if isinstance(key, tuple) and key and key[0] in ("eye", "scalar"):
        return m
    return ("atom", ("T", key))


def _poly(node: E.Node) -> Poly:
    if isinstance(node, E.Add):
        return _add(_poly(node.args[0]), _poly(node.args[1]))
    if isinstance(node, E.Sub):
        return _add(_poly(node.args[0]), _poly(node.args[1]), -1)
    if isinstance(node, E.Neg):
        return _scale(_poly(node.args[0]), -1)
    if isinstance(node, E.MatMul):
        return _product(_poly(node.args[0]), _poly(node.args[1]), "@")
    if isinstance(node, E.Mul):
        a, b = node.args
        for x, y in ((a, b), (b, a)):         # c * X with c a number: a scalar multiple
            if isinstance(x, E.Broadcast) and isinstance(x.args[0], E.Const):
                return _scale(_poly(y), x.args[0].value)
        return _product(_poly(a), _poly(b), "*")
    if isinstance(node, E.Transpose):
        return {_transpose_monomial(m): c for m, c in _poly(node.args[0]).items()}
    if isinstance(node, E.Const):
        return {("atom", ("scalar", "1")): node.value}
    if isinstance(node, E.Broadcast):
        inner = node.args[0]
        if isinstance(inner, E.Const):
            return {("atom", ("ones", str(node.shape))): inner.value}
        if inner.is_scalar:
            return _poly(inner)           # a scalar multiplying elementwise
        return _atom(("bcast", str(node.shape), normal_form(inner)))
    if isinstance(node, E.Eye):
        return _atom(("eye", str(node.shape)))
    if isinstance(node, E.Var):
        return _atom(node.name)
    if isinstance(node, E.Div):
        return _product(_poly(node.args[0]), _atom(("1/", normal_form(node.args[1]))), "*")
    return _atom((type(node).__name__, tuple(str(p) for p in node.params),
                  tuple(normal_form(a) for a in node.args)))
