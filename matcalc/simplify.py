"""Simplification into the form a textbook prints.

Contract: ``simplify(node)`` returns an equal node with transposes pushed through products, sums
and broadcasts to the leaves, identities, ones and zeros removed, scalar factors in front,
negations gathered, and like terms collected (X x + X.T x -> (X + X.T) x). It never pushes a
transpose into an elementwise function of a non-leaf (tanh(Z).T stays), so the result shares its
intermediates with the forward expression.

Each rule is a function (``rules_for``: the simplifier's own rules of the core algebra, the
rewrites in the operation's stanza in ``matcalc.ops``, then rules that span operations) that takes
a node whose operands are already simplified and returns a replacement or None; its docstring
says what it decreases, so rewriting ends. The engine owns traversal (iterative), re-simplifies what a rule returns, records which rule
fired, and stops with ``UnsupportedError`` (naming the last rules) past ``MAX_REWRITES``.
"""

from __future__ import annotations

from typing import Callable

import sympy

from .constants import decimal_places
from .errors import ConstantTooLargeError, UnsupportedError
from .expr import (Add, Apply, Broadcast, Const, Div, Eye, MatMul, Mul, Neg, Node, Pow, Sub,
                   Transpose, Var, constant_value, div, is_ones, is_zero, mul, ones, postorder,
                   scalar_factor, sub, with_args, zeros)  # noqa: F401
from .ops import operation_of
from .ops.contractions import Sum, Trace
from .ops.elementwise import apply
from .ops.linalg import Diag, Inv
from .ops.reductions import LogSumExp, Softmax

MAX_REWRITES = 200_000


# ---------------------------------------------------------------------------------------------
# Helpers: scalars, zeros, ones
# ---------------------------------------------------------------------------------------------

const_value = constant_value
is_one_like = is_ones


def scaled(s: Node, a: Node) -> Node:
    """s * a for a scalar s (1 x 1) and any a."""
    return mul(s, a)


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------

def _is_gram(node: Node) -> bool:
    """P @ P.T or P.T @ P (symmetric by construction), possibly scaled."""
    sf = scalar_factor(node)
    if sf is not None:
        node = sf[1]
    if not isinstance(node, MatMul):
        return False
    p, q = node.args
    return isinstance(q, Transpose) and q.args[0] is p or \
        isinstance(p, Transpose) and p.args[0] is q


def _symmetric(node: Node, depth: int = 8) -> bool:
    """Known symmetric: an spd or symmetric variable, the identity, a diagonal matrix, a Gram
    matrix (P.T @ P, P.T @ S @ P for a symmetric S), inv of a symmetric, a scalar multiple (or
    quotient by a scalar) or a sum of symmetric ones. ``depth`` bounds the look (a constant: no
    cost in the size)."""
    if depth == 0 or node.rows != node.cols:
        return False
    if isinstance(node, Var):
        return node.domain in ("spd", "symmetric")
    if isinstance(node, Eye) or (isinstance(node, Diag) and node.to_matrix):
        return True
    if _is_gram(node) or _is_sandwich(node, depth):
        return True
    if isinstance(node, (Inv, Neg)):
        return _symmetric(node.args[0], depth - 1)
    if isinstance(node, (Add, Sub)):
        return all(_symmetric(a, depth - 1) for a in node.args)
    if _by_scalar(node):
        return _symmetric(node.args[0], depth - 1)
    sf = scalar_factor(node)
    return sf is not None and _symmetric(sf[1], depth - 1)


def _by_scalar(node: Node) -> bool:
    """A / s for a repeated scalar s (a scalar multiple written as a quotient)."""
    return isinstance(node, Div) and isinstance(node.args[1], Broadcast) and \
        node.args[1].args[0].is_scalar


def _is_sandwich(node: Node, depth: int) -> bool:
    """P.T @ S @ P (either grouping) for a symmetric S."""
    if not isinstance(node, MatMul):
        return False
    a, b = node.args
    if isinstance(a, MatMul) and isinstance(a.args[0], Transpose) and a.args[0].args[0] is b:
        return _symmetric(a.args[1], depth - 1)
    if isinstance(a, Transpose) and isinstance(b, MatMul) and b.args[1] is a.args[0]:
        return _symmetric(b.args[0], depth - 1)
    return False


def transpose_rules(node: Transpose):
    """Push a transpose down. Decreases: the height of transposes above the leaves."""
    a = node.args[0]
    if isinstance(a, Transpose):
        return a.args[0]
    if a.is_scalar:
        return a
    if isinstance(a, MatMul):       # a product's transpose is pushed down even when symmetric,
        return MatMul.make(Transpose.make(a.args[1]), Transpose.make(a.args[0]))  # as before
    if _symmetric(a):
        return a
    if isinstance(a, (Add, Sub)) and all(_symmetric(x) or _is_gram(x) for x in a.args):
        return a                      # a sum of symmetric terms: diag(s) - s @ s.T
    if isinstance(a, (Add, Sub)) and all(_is_atom(x) for x in a.args) and \
            any(isinstance(x, Transpose) for x in a.args):
        # (X + Y.T).T = X.T + Y cancels a transpose; otherwise a sum keeps its transpose
        # outside, so it stays the forward pass's own value ((x - mu).T, (M - U @ V.T).T),
        # shared and as books write it
        return type(a).make(Transpose.make(a.args[0]), Transpose.make(a.args[1]))
    if isinstance(a, Neg):
        return Neg.make(Transpose.make(a.args[0]))
    if isinstance(a, Eye):
        return a
    if isinstance(a, Broadcast):
        return Broadcast.make(Transpose.make(a.args[0]), a.params[1], a.params[0])
    sf = scalar_factor(a)
    if sf is not None:
        return scaled(sf[0], Transpose.make(sf[1]))
    if _by_scalar(a):                 # (A / s).T = A.T / s
        return Div.make(Transpose.make(a.args[0]), Broadcast.make(a.args[1].args[0], *node.shape))
    return None


def _is_atom(node: Node) -> bool:
    """A leaf, a transposed leaf, or a scalar multiple of one."""
    sf = scalar_factor(node)
    if sf is not None:
        node = sf[1]
    if isinstance(node, Transpose):
        node = node.args[0]
    return not node.args or (isinstance(node, Broadcast) and not node.args[0].args)


def matmul_rules(node: MatMul):
    """Identities, zeros, scalars and signs out of products. Decreases: nodes under products."""
    a, b = node.args
    if isinstance(a, Eye):
        return b
    if isinstance(b, Eye):
        return a
    if is_zero(a) or is_zero(b):
        return zeros(*node.shape)
    cancelled = _cancel_inverses(a, b, node.shape)
    if cancelled is not None:
        return cancelled
    if isinstance(a, Diag) and a.to_matrix:
        if isinstance(b, (Sub, Add)) and any(isinstance(t, Eye) for t in b.args):
            # diag(v) (I - Q) = diag(v) - diag(v) Q: the identity term frees the diagonal
            left, right = (MatMul.make(a, t) for t in b.args)
            return type(b).make(left, right)
    if isinstance(a, Neg):
        return Neg.make(MatMul.make(a.args[0], b))
    if isinstance(b, Neg):
        return Neg.make(MatMul.make(a, b.args[0]))
    for i, x in enumerate((a, b)):
        sf = scalar_factor(x)
        if sf is not None:
            rest = (sf[1], b) if i == 0 else (a, sf[1])
            return scaled(sf[0], MatMul.make(*rest))
    for i, x in enumerate((a, b)):      # (A / s) @ B = (A @ B) / s for a repeated scalar s
        if _by_scalar(x) and not x.is_scalar:
            rest = (x.args[0], b) if i == 0 else (a, x.args[0])
            return Div.make(MatMul.make(*rest), Broadcast.make(x.args[1].args[0], *node.shape))
    if a.is_scalar:         # (1x1) @ (1xm): a scalar multiple
        return mul(a, b)
    if b.is_scalar:
        return mul(b, a)
    return None


def mul_rules(node: Mul):
    """Hadamard products: ones and zeros away, scalars to the front, signs and divisions out.

    Decreases: (number of nodes, scalars not in front, Divs under Muls).
    """
    a, b = node.args
    if is_zero(a) or is_zero(b):
        return zeros(*node.shape)
    if is_one_like(a) and b.shape == node.shape:
        return b
    if is_one_like(b) and a.shape == node.shape:
        return a
    if isinstance(a, Neg):
        return Neg.make(Mul.make(a.args[0], b))
    if isinstance(b, Neg):
        return Neg.make(Mul.make(a, b.args[0]))
    sa = scalar_factor(node)
    if sa is None:
        # the scalar on the right: move it to the front
        if isinstance(b, Broadcast) and b.args[0].is_scalar and not (
                isinstance(a, Broadcast) and a.args[0].is_scalar):
            return Mul.make(b, a)
        if b.is_scalar and a.is_scalar and isinstance(b, Const):
            return Mul.make(b, a)
        # scalar multiples inside a Hadamard product come out
        for i, x in enumerate((a, b)):
            sf = scalar_factor(x)
            if sf is not None:
                rest = (sf[1], b) if i == 0 else (a, sf[1])
                return scaled(sf[0], Mul.make(*rest))
        if a is b:
            return Pow.make(a, 2)
        if isinstance(a, (Mul, Pow)) or isinstance(b, Pow):
            merged = _merge_powers(node)
            if merged is not None:
                return merged
        for x, y in ((a, b), (b, a)):          # relu(u) * step(u) = relu(u)
            if isinstance(x, Apply) and isinstance(y, Apply) and x.name == "relu" and \
                    y.name == "step" and x.args[0] is y.args[0]:
                return x
        # a * (1 / b) -> a / b, and (a / b) * c -> (a * c) / b: one division, outermost
        if isinstance(b, Div) and is_one_like(b.args[0]):
            return Div.make(a, b.args[1])
        if isinstance(a, Div) and is_one_like(a.args[0]):
            return Div.make(b, a.args[1])
        if isinstance(a, Div):
            return Div.make(Mul.make(a.args[0], b), a.args[1])
        if isinstance(b, Div):
            return Div.make(Mul.make(a, b.args[0]), b.args[1])
        return None
    s, rest = sa
    value = const_value(s)
    if value == -1:
        return Neg.make(rest)
    if isinstance(rest, Div) and is_one_like(rest.args[0]):      # s * (1 / X) -> s / X
        return Div.make(Broadcast.make(s, *node.shape), rest.args[1])
    if isinstance(s, Div) and is_one_like(s.args[0]) and not rest.is_scalar:   # (1/s) * X -> X / s
        return Div.make(rest, Broadcast.make(s.args[1], *node.shape))
    inner = scalar_factor(rest)
    if inner is not None:
        return scaled(mul(s, inner[0]), inner[1])
    if _by_scalar(rest) and not isinstance(s, Const):     # s * (A / t) = (s / t) * A
        return scaled(div(s, rest.args[1].args[0]), rest.args[0])
    if value is not None and const_value(rest) is not None:       # c * (d * ones) = (c d) ones
        return Broadcast.make(Const.make(value * const_value(rest)), *node.shape)
    if isinstance(rest, Broadcast) and rest.args[0].is_scalar:   # (c ones) * (s ones) = (c s) ones
        return Broadcast.make(mul(s, rest.args[0]), *node.shape)
    if isinstance(rest, Neg) and value is not None:
        return scaled(Const.make(-value), rest.args[0])
    return None


def div_rules(node: Div):
    """Division: by a constant becomes a scalar factor; signs and scalars out. Decreases: Divs."""
    a, b = node.args
    if a is b:                    # x / x = 1 wherever the quotient is defined
        return ones(*node.shape)
    if isinstance(a, Mul) and b in a.args:       # (x * y) / y = x, where defined
        return a.args[0] if a.args[1] is b else a.args[1]
    value = const_value(b)
    if value is not None and value != 0:
        return scaled(Const.make(1 / value), a) if value != 1 else a
    if is_one_like(b) and a.shape == node.shape:
        return a
    if is_zero(a):
        return zeros(*node.shape)
    if isinstance(a, Neg):
        return Neg.make(Div.make(a.args[0], b))
    sf = scalar_factor(a)
    if sf is not None:
        return scaled(sf[0], Div.make(sf[1], b))
    if _by_scalar(a) and not a.is_scalar:
        if isinstance(b, Broadcast) and b.args[0].is_scalar:
            # (A / s) / t = A / (s t): one quotient, powers merged (x / r ** 2 / r = x / r ** 3)
            return Div.make(a.args[0],
                            Broadcast.make(mul(a.args[1].args[0], b.args[0]), *node.shape))
        # (A / s) / B = (A / B) / s: a scalar's quotient outermost, where it meets its powers
        return Div.make(Div.make(a.args[0], b), a.args[1])
    if isinstance(b, Apply) and b.name == "abs" and isinstance(a, Mul) and \
            any(isinstance(f, Apply) and f.name == "sign" and f.args[0] is b.args[0]
                for f in a.args) and b.args[0] in a.args:
        return ones(*node.shape)                 # sign(d) * d / |d| = 1 wherever defined
    return _cancel_powers(node)


def _powers(node: Node, sign: int, out: dict, order: dict, budget: list) -> None:
    """Add the integer powers of the bases of a product and quotient to ``out`` (base ->
    exponent), each base once in ``order`` (an insertion-ordered set); ``budget`` bounds the
    nodes looked at."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooDeep
    if isinstance(node, Mul) and scalar_factor(node) is None:
        for a in node.args:
            _powers(a, sign, out, order, budget)
    elif isinstance(node, Div) and not is_one_like(node.args[0]):
        _powers(node.args[0], sign, out, order, budget)
        _powers(node.args[1], -sign, out, order, budget)
    elif isinstance(node, Div):
        _powers(node.args[1], -sign, out, order, budget)
    elif isinstance(node, Pow) and node.exponent.is_Integer:
        inner: dict = {}
        _powers(node.args[0], 1, inner, order, budget)
        for base, e in inner.items():
            out[base] = out.get(base, 0) + sign * e * node.exponent
    else:
        if node not in order:
            order[node] = None
        out[node] = out.get(node, 0) + sign


class _TooDeep(Exception):
    pass


def _count_factors(node: Node) -> int:
    if isinstance(node, (Mul, Div)) and scalar_factor(node) is None:
        return sum(_count_factors(a) for a in node.args)
    if isinstance(node, Pow):
        return 1 + _count_factors(node.args[0])
    return 1


def _collected_powers(node: Node):
    """base -> total exponent over a product or quotient's factors, and the bases in order of
    first appearance; None past the depth this looks."""
    out: dict = {}
    order: dict = {}
    try:
        _powers(node, 1, out, order, [64])
    except _TooDeep:
        return None
    return out, order


def _cancel_powers(node: Div):
    """Powers of one base in a quotient cancel: det(X) / det(X) ** 2 = 1 / det(X),
    x / (x ** 2) ** 2 = 1 / x ** 3, V ** 2 / (V / M) / M ** 2 = V / M (wherever the quotient is
    defined). Decreases: the number of factors (it fires only when that number falls)."""
    collected = _collected_powers(node)
    if collected is None:
        return None
    out, order = collected
    merged = [(b, out[b]) for b in order if out[b] != 0]
    if sum(1 + (abs(e) != 1) for _, e in merged) >= _count_factors(node):
        return None
    top = [b if e == 1 else Pow.make(b, e) for b, e in merged if e > 0]
    bottom = [b if e == -1 else Pow.make(b, -e) for b, e in merged if e < 0]
    result = top[0] if top else ones(*node.shape)
    for f in top[1:]:
        result = Mul.make(result, f)
    for f in bottom:
        result = Div.make(result, f)
    return result


def _merge_powers(node: Mul):
    """Equal factors of an elementwise product become one power: s * u * s = s ** 2 * u,
    x ** 2 * x = x ** 3. Decreases: the number of factors written (a power is one)."""
    collected = _collected_powers(node)
    if collected is None:
        return None
    out, order = collected
    if any(e <= 0 for e in out.values()) or len(order) >= _occurrences(node):
        return None
    factors = [b if out[b] == 1 else Pow.make(b, out[b]) for b in order]
    result = factors[0]
    for f in factors[1:]:
        result = Mul.make(result, f)
    return result


def _occurrences(node: Node) -> int:
    """How many factors an elementwise product writes (a power of a base counts one)."""
    if isinstance(node, Mul) and scalar_factor(node) is None:
        return sum(_occurrences(a) for a in node.args)
    return 1


def neg_rules(node: Neg):
    """Negation: double negation, zeros, negative constants. Decreases: Neg nodes."""
    a = node.args[0]
    if isinstance(a, Neg):
        return a.args[0]
    if is_zero(a):
        return a
    if isinstance(a, Const):
        return Const.make(-a.value)
    if isinstance(a, Broadcast) and isinstance(a.args[0], Const):
        return Broadcast.make(Const.make(-a.args[0].value), *a.shape)
    sf = scalar_factor(a)
    if sf is not None and const_value(sf[0]) is not None:
        return scaled(Const.make(-const_value(sf[0])), sf[1])
    return None


def pow_rules(node: Pow):
    """Trivial powers; powers of binary and sign labels; powers of integer powers; powers of a
    repeated scalar. Decreases: Pow nodes (and Pows above Broadcasts)."""
    a = node.args[0]
    if node.exponent == 1:
        return a
    value = const_value(a)
    if value is not None and not (value == 0 and not node.exponent.is_positive):
        folded = Const.make(value ** node.exponent)              # 1 ** 2 = 1, (c ones) ** p
        return folded if node.is_scalar else Broadcast.make(folded, *node.shape)
    if node.exponent == 0:
        return ones(*node.shape)
    if isinstance(a, Broadcast):          # (s 1) ** p = s ** p 1, (1 r) ** p = 1 (r ** p)
        return Broadcast.make(Pow.make(a.args[0], node.exponent), *node.shape)
    if isinstance(a, Var) and node.exponent.is_Integer and node.exponent > 0:
        if a.domain == "binary":             # labels in {0, 1}: y ** k = y
            return a
        if a.domain == "sign":               # labels in {-1, +1}: y ** 2 = 1
            return ones(*node.shape) if node.exponent % 2 == 0 else a
    if isinstance(a, Pow) and node.exponent.is_Integer and a.exponent.is_Integer:
        return Pow.make(a.args[0], a.exponent * node.exponent)     # (x ** 2) ** 2 = x ** 4
    return None


def broadcast_rules(node: Broadcast):
    """No-op broadcasts and broadcasts of broadcasts vanish. Decreases: Broadcasts.

    ``ones(n, m)`` and ``zeros(n, m)`` are broadcast constants: inside ``1 - tanh(Z) ** 2`` the
    1 prints as 1; alone, as ``ones(n, m)``.
    """
    a = node.args[0]
    if a.shape == node.shape:
        return a
    if isinstance(a, Broadcast):
        return Broadcast.make(a.args[0], *node.shape)
    sf = scalar_factor(a)
    if sf is not None and not a.is_scalar:        # (c v) repeated = c (v repeated)
        return scaled(sf[0], Broadcast.make(sf[1], *node.shape))
    if isinstance(a, Neg):
        return Neg.make(Broadcast.make(a.args[0], *node.shape))
    return None


def _terms(node: Node) -> list[tuple[sympy.Expr, Node]]:
    """A chain of + and - as (coefficient, term) pairs, in order (iteratively)."""
    out: list[tuple[sympy.Expr, Node]] = []
    stack = [(sympy.Integer(1), node)]
    while stack:
        sign, n = stack.pop()
        if isinstance(n, Add):
            stack.append((sign, n.args[1]))
            stack.append((sign, n.args[0]))
        elif isinstance(n, Sub):
            stack.append((-sign, n.args[1]))
            stack.append((sign, n.args[0]))
        elif isinstance(n, Neg):
            stack.append((-sign, n.args[0]))
        else:
            sf = scalar_factor(n)
            if sf is not None and const_value(sf[0]) is not None:
                out.append((sign * const_value(sf[0]), sf[1]))
            elif is_zero(n):
                continue
            elif isinstance(n, Broadcast) and const_value(n) is not None:
                out.append((sign * const_value(n), ones(*n.shape)))     # c as c * ones
            elif isinstance(n, Broadcast) and (sf := scalar_factor(n.args[0])) is not None and \
                    const_value(sf[0]) is not None:
                c, rest = sf                            # (-1/n) sum(d) repeated: its sign shows
                out.append((sign * const_value(c), Broadcast.make(rest, *n.shape)))
            elif isinstance(n, Const):
                out.append((sign * n.value, Const.make(1)))             # constants add up
            else:
                out.append((sign, n))
    return out


def _product_key(node: Node):
    """Identity of a term up to the grouping of a matrix product (and of a scalar multiple of
    one: s * (A @ (B @ C)) and s * (A @ B @ C) are like terms)."""
    sf = scalar_factor(node)
    if sf is not None and isinstance(sf[1], MatMul):
        return ("*", id(sf[0])) + _product_key(sf[1])
    if not isinstance(node, MatMul):
        return id(node)
    factors, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, MatMul):
            stack.extend((n.args[1], n.args[0]))
        else:
            factors.append(id(n))
    return ("@",) + tuple(factors)


def _rebuild(terms: list, shape) -> Node:
    """The sum of (coefficient, term) pairs, leading with a positive term (a - b, not -b + a)."""
    first_positive = next((k for k, (c, _) in enumerate(terms) if not c.is_negative), None)
    if first_positive:
        terms = [terms[first_positive]] + terms[:first_positive] + terms[first_positive + 1:]
    result = None
    for c, t in terms:
        magnitude = -c if c.is_negative else c
        piece = t if magnitude == 1 else scaled(Const.make(magnitude), t)
        if result is None:
            result = Neg.make(piece) if c.is_negative else piece
        else:
            result = Sub.make(result, piece) if c.is_negative else Add.make(result, piece)
    return result if result is not None else zeros(*shape)


def _factor_products(terms: list) -> bool:
    """Merge c1 A@C + c2 B@C into (c1 A + c2 B)@C (and on the left). True if one merged."""
    for side in (1, 0):
        for a in range(len(terms)):
            ca, ta = terms[a]
            if not isinstance(ta, MatMul):
                continue
            for b in range(a + 1, len(terms)):
                cb, tb = terms[b]
                if isinstance(tb, MatMul) and tb.args[side] is ta.args[side]:
                    other = 1 - side
                    pair_terms = [(ca, ta.args[other]), (cb, tb.args[other])]
                    # X + X.T rather than X.T + X, as books print it
                    pair_terms.sort(key=lambda ct: isinstance(ct[1], Transpose))
                    inner = _rebuild(pair_terms, None)
                    pair = (inner, ta.args[side]) if side == 1 else (ta.args[side], inner)
                    terms[a] = (sympy.Integer(1), MatMul.make(*pair))
                    del terms[b]
                    return True
    return False


def _hadamard_factors(node: Node) -> list[Node]:
    """The operands of a chain of elementwise products, left to right."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Mul):
            stack.extend(reversed(n.args))
        else:
            out.append(n)
    return out


def _factor_hadamard(terms: list) -> bool:
    """Merge c1 (F * a) + c2 (F * b) into F * (c1 a + c2 b) for a full-shape factor F shared by
    the two terms of a two-term sum (s * G - s * (G.T @ s) -> s * (G - G.T @ s)). True if it
    merged. Only two-term sums: factoring a long sum pair by pair would cost its length squared.
    Decreases: the number of terms."""
    if len(terms) != 2:
        return False
    for a in range(len(terms)):
        fa = _hadamard_factors(terms[a][1])
        if len(fa) < 2:
            continue
        for b in range(a + 1, len(terms)):
            fb = _hadamard_factors(terms[b][1])
            if len(fb) < 2:
                continue
            common = next((f for f in fa if any(f is g for g in fb) and
                           not isinstance(f, Broadcast) and not f.is_scalar), None)
            if common is None:
                continue
            rest_a = _product_without(fa, common)
            rest_b = _product_without(fb, common)
            inner = _rebuild([(terms[a][0], rest_a), (terms[b][0], rest_b)], None)
            terms[a] = (sympy.Integer(1), Mul.make(common, inner))
            del terms[b]
            return True
    return False


def _product_without(factors: list[Node], drop: Node) -> Node:
    kept = list(factors)
    kept.pop(next(i for i, f in enumerate(kept) if f is drop))
    result = kept[0]
    for f in kept[1:]:
        result = Mul.make(result, f)
    return result


def sum_chain_rules(node: Node):
    """Collect like terms in a chain of + and -. Decreases: the number of terms."""
    terms = _terms(node)
    before = len(terms)
    terms = _mirrored_terms(terms)
    combined: dict = {}
    for c, t in terms:
        key = _product_key(t)         # A @ (B @ C) and (A @ B) @ C are like terms
        if key in combined:
            combined[key][0] += c
        else:
            combined[key] = [c, t]
    merged = [(c, t) for c, t in combined.values() if c != 0]
    factored = False
    while _factor_products(merged) or _factor_hadamard(merged):
        factored = True
    common = _common_coefficient(merged)
    if len(merged) == before and not factored and common is None:
        return _sign_rules(node)
    if common is not None:        # c a - c b = c (a - b)
        return scaled(Const.make(common), _rebuild([(c / common, t) for c, t in merged],
                                                   node.shape))
    return _rebuild(merged, node.shape)


def _mirrored_terms(terms: list) -> list:
    """Where a term is the transpose of a sum, (P - Q).T, whose terms transposed are like terms
    of the others (x.T @ A / z against A @ x / z for a symmetric A), the sum's terms transposed
    in its place, so they merge: u + (u.T).T = 2 u. Otherwise ``terms`` unchanged."""
    if len(terms) < 2 or not any(isinstance(t, Transpose) and isinstance(t.args[0], (Add, Sub))
                                 for _, t in terms):
        return terms
    keys = {_product_key(t) for _, t in terms}
    for k, (c, t) in enumerate(terms):
        if not (isinstance(t, Transpose) and isinstance(t.args[0], (Add, Sub))):
            continue
        inner = _terms(t.args[0])
        if len(inner) > 8:
            continue
        pushed = [(c * ci, simplify(Transpose.make(ti))) for ci, ti in inner]
        flat = []
        for ci, ti in pushed:            # a pushed term may itself be a scalar multiple
            flat.extend((ci * cj, tj) for cj, tj in _terms(ti))
        if any(_product_key(ti) in keys for _, ti in flat):
            return terms[:k] + flat + terms[k + 1:]
    return terms


def _common_coefficient(terms: list):
    """The positive rational factor every coefficient shares (2 in 2a - 2b, 1/2 in
    -(1/2) a + (m/2) b), when it is not 1 and there are two or more terms; else None."""
    if len(terms) < 2:
        return None
    sizes = {abs(c) for c, _ in terms}
    if len(sizes) == 1:                 # the same magnitude, numeric or not (1/m and -1/m)
        size = sizes.pop()
        # only a size each coefficient is plus or minus: never abs(n - 2), which is 0 at n = 2
        if size == 1 or not all(c / size in (1, -1) for c, _ in terms):
            return None
        return size
    numbers = [c.as_coeff_Mul()[0] for c, _ in terms]
    if not all(x.is_Rational for x in numbers):
        return None
    content = sympy.Rational(sympy.gcd([x.p for x in numbers]),
                             sympy.lcm([x.q for x in numbers]))
    content = abs(content)
    if content == 1 or decimal_places(content) is not None:
        return None         # 0.9 y + 0.1/c stays as typed, not (1/10) (9 y + 1/c)
    return content


def _sign_rules(node: Node):
    """a + (-b) -> a - b, (-a) + b -> b - a, a - (-b) -> a + b, zeros. Decreases: Neg nodes."""
    a, b = node.args
    if is_zero(b):
        return a
    if is_zero(a):
        return b if isinstance(node, Add) else Neg.make(b)
    if isinstance(node, Add) and isinstance(b, Neg):
        return Sub.make(a, b.args[0])
    if isinstance(node, Add) and isinstance(a, Neg):
        return Sub.make(b, a.args[0])
    if isinstance(node, Sub) and isinstance(b, Neg):
        return Add.make(a, b.args[0])
    return None


def _inverse_pair(p: Node, q: Node) -> bool:
    """Whether p @ q is the identity: X @ inv(X), inv(X) @ X, or a transpose of either."""
    if isinstance(q, Inv) and q.args[0] is p or isinstance(p, Inv) and p.args[0] is q:
        return True
    if isinstance(p, Transpose) and isinstance(q, Transpose):
        return _inverse_pair(q.args[0], p.args[0])          # p.T @ q.T = (q @ p).T
    return False


SPINE = 8     # how far along a product chain the cancellation looks (a constant: no n^2)


def _end_factor(node: Node, side: int) -> Node:
    """The last (side 1) or first (side 0) factor of a product chain."""
    for _ in range(SPINE):
        if not isinstance(node, MatMul):
            break
        node = node.args[side]
    return node


def _without_end(node: Node, side: int):
    """The chain without its last (side 1) or first (side 0) factor; None if nothing is left."""
    if not isinstance(node, MatMul):
        return None
    rest = _without_end(node.args[side], side)
    other = node.args[1 - side]
    if rest is None:
        return other
    return MatMul.make(other, rest) if side == 1 else MatMul.make(rest, other)


def _cancel_inverses(a: Node, b: Node, shape):
    """Where two product chains meet: (... P) @ (inv(P) ...) = (...) @ (...),
    (... diag(u)) @ (diag(v) ...) = (...) @ diag(u * v) @ (...), diag(v) @ ones = v.

    Decreases: the number of factors.
    """
    last, first = _end_factor(a, 1), _end_factor(b, 0)
    if _inverse_pair(last, first):
        middle = None
    elif _is_diag(last) and _is_diag(first):
        u, v = sorted((last.args[0], first.args[0]), key=lambda t: isinstance(t, (Add, Sub)))
        middle = Diag.make(Mul.make(u, v))          # diag(s * (1 - s)), as books write it
    elif _is_diag(last) and const_value(first) == 1 and first.cols == 1:
        middle = last.args[0]                                # diag(v) @ ones = v
    elif _is_diag(first) and const_value(last) == 1 and last.rows == 1:
        middle = Transpose.make(first.args[0])               # ones.T @ diag(v) = v.T
    else:
        return None
    # the chains without their end factors are built only once something matched
    left, right = _without_end(a, 1), _without_end(b, 0)
    parts = [p for p in (left, middle, right) if p is not None]
    if not parts:
        return Eye.make(shape[0])
    result = parts[0]
    for p in parts[1:]:
        result = MatMul.make(result, p)
    return result


def _is_diag(node: Node) -> bool:
    return isinstance(node, Diag) and node.to_matrix


def softmax_sum(node: Sum):
    """A softmax sums to one along its own axis, and so do the rows and columns of eye(n); the
    sum of eye(n) * A is trace(A).
    Decreases: Sum nodes."""
    a = node.args[0]
    if isinstance(a, Softmax) and node.axis == a.axis:
        return ones(*node.shape)
    if isinstance(a, Eye) and node.axis is not None:       # each row (column) of I sums to 1
        return ones(*node.shape)
    if node.axis is None and isinstance(a, Mul):
        for x, y in (a.args, reversed(a.args)):
            if isinstance(x, Eye):
                return Trace.make(y)
    return None


def diag_rules(node: Diag):
    """diag(c * ones(n)) = c * eye(n), diag(ones(n) / s) = eye(n) / s for a scalar s.
    Decreases: Diag nodes."""
    a = node.args[0]
    if not node.to_matrix:
        return None
    n = a.rows
    if is_one_like(a):
        return Eye.make(n)
    if isinstance(a, Div) and is_one_like(a.args[0]) and isinstance(a.args[1], Broadcast) and \
            a.args[1].args[0].is_scalar:
        return Div.make(Eye.make(n), Broadcast.make(a.args[1].args[0], n, n))
    sf = scalar_factor(a)
    if sf is not None and is_one_like(sf[1]):
        return scaled(sf[0], Eye.make(n))
    return None


#: The simplifier's own rules: the core algebra (its rewrites span transposes, products,
#: scalars and signs), and rewrites whose top is one operation but that involve another.
CORE_RULES: dict[type, Callable[[Node], Node | None]] = {
    Transpose: transpose_rules,
    MatMul: matmul_rules,
    Mul: mul_rules,
    Div: div_rules,
    Neg: neg_rules,
    Pow: pow_rules,
    Broadcast: broadcast_rules,
    Add: sum_chain_rules,
    Sub: sum_chain_rules,
}
CROSS_RULES: dict[type, tuple] = {Sum: (softmax_sum,), Diag: (diag_rules,)}


def rules_for(node: Node) -> tuple:
    """The rules that may rewrite ``node``, in the order they are tried: the simplifier's own,
    then those of the operation's stanza (``matcalc.ops``), then rules spanning operations."""
    core = CORE_RULES.get(type(node))
    op = operation_of(node)
    own = op.rewrites if op is not None else ()
    return ((core,) if core is not None else ()) + own + CROSS_RULES.get(type(node), ())


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------

def _inner_chain_links(roots: list[Node]) -> set:
    """Ids of + / - nodes used only inside longer + / - chains (collecting like terms at every
    link of a chain of n terms would cost n^2)."""
    outside: set[int] = {id(r) for r in roots}
    for node in postorder(roots):
        chain = isinstance(node, (Add, Sub))      # a sum under a negation is a chain's top
        for a in node.args:
            if not chain:
                outside.add(id(a))
    return {id(n) for n in postorder(roots)
            if isinstance(n, (Add, Sub)) and id(n) not in outside}


def _links_below(top: Node) -> set:
    """Ids of the + / - links of the chain under ``top`` (not ``top`` itself)."""
    found, stack = set(), list(top.args) if isinstance(top, (Add, Sub)) else []
    while stack:
        n = stack.pop()
        if isinstance(n, (Add, Sub)):
            found.add(id(n))
            stack.extend(n.args)
    return found


def simplify_all(roots: list[Node], log: list | None = None) -> list[Node]:
    """Simplify several expressions together (shared subexpressions are simplified once)."""
    memo: dict[int, Node] = {}
    forward: dict[int, Node] = {}
    inner = _inner_chain_links(roots)
    keep: list[Node] = []          # keeps every visited node alive, so ids stay unique
    fired: list[str] = []
    count = 0
    for root in roots:
        stack = [root]
        while stack:
            n = stack[-1]
            if id(n) in memo:
                stack.pop()
                continue
            if id(n) in forward:
                target = forward[id(n)]
                if id(target) in memo:
                    memo[id(n)] = memo[id(target)]
                    stack.pop()
                else:
                    stack.append(target)
                continue
            pending = [a for a in n.args if id(a) not in memo]
            if pending:
                stack.extend(reversed(pending))
                continue
            args = tuple(memo[id(a)] for a in n.args)
            m = with_args(n, args)
            rules = rules_for(m)
            restricted = isinstance(m, (Add, Sub)) and id(n) in inner
            if restricted:
                rules = (_sign_rules,)   # like terms are collected once, at the top of the chain
            r = rule = None
            for rule in rules:
                try:
                    r = rule(m)
                except ConstantTooLargeError:     # constants too deep to combine stay as they are
                    r = None
                if r is not None and r is not m:
                    break
            keep.append(m)
            if r is None or r is m:
                memo[id(n)] = m
                if not restricted:       # m is fully simplified only if every rule had its say
                    memo[id(m)] = m
                stack.pop()
                continue
            count += 1
            fired.append(rule.__name__)
            if log is not None:
                log.append(rule.__name__)
            if count > MAX_REWRITES:
                raise UnsupportedError(
                    f"simplification did not settle after {MAX_REWRITES} rewrites; last rules: "
                    f"{', '.join(fired[-10:])}")
            keep.append(r)
            if rule is sum_chain_rules:
                inner.update(_links_below(r))    # the rebuilt chain is already collected
            forward[id(n)] = r
            if m is not n:
                forward[id(m)] = r
    return [memo[id(r)] for r in roots]


# ---------------------------------------------------------------------------------------------
# Rewrites of the expression itself, before differentiation
# ---------------------------------------------------------------------------------------------

def _log_softmax(node: Node):
    """log(softmax(z)) = z - logsumexp(z): exact, stable, and its gradient is the familiar one."""
    if isinstance(node, Apply) and node.name == "log" and isinstance(node.args[0], Softmax):
        z = node.args[0].args[0]
        axis = node.args[0].axis
        lse = LogSumExp.make(z, axis)
        return sub(z, lse.T if axis == 0 else lse)
    return None


def _log_exp(node: Node):
    """log(exp(x)) = x."""
    if isinstance(node, Apply) and node.name == "log" and isinstance(node.args[0], Apply) and \
            node.args[0].name == "exp":
        return node.args[0].args[0]
    return None


def _apply_of(node: Node, name: str):
    """The operand of ``name(operand)``, else None."""
    return node.args[0] if isinstance(node, Apply) and node.name == name else None


def _one_minus(node: Node):
    """x for 1 - x (the 1 a broadcast one), else None."""
    if isinstance(node, Sub) and is_one_like(node.args[0]):
        return node.args[1]
    return None


def _one_plus(node: Node):
    """x for 1 + x or x + 1, else None."""
    if isinstance(node, Add):
        a, b = node.args
        if is_one_like(a):
            return b
        if is_one_like(b):
            return a
    return None


def _spelled_softmax(node: Node):
    """exp(z) / sum(exp(z)) = softmax(z) (a vector's, or all entries')."""
    if isinstance(node, Div):
        a, b = node.args
        if isinstance(b, Broadcast):
            b = b.args[0]
        if _apply_of(a, "exp") is not None and isinstance(b, Sum) and b.axis is None and \
                b.args[0] is a:
            return Softmax.make(a.args[0], None)
    return None


def _spelled_log(node: Node):
    """log(sum(exp(z))) = logsumexp(z); log(1 + exp(z)) = softplus(z);
    log(sigmoid(z)) = -softplus(-z); log(1 - sigmoid(z)) = -softplus(z). Each is exact, and
    the right side is finite where the left is (no overflow of exp, no log of a rounded 0)."""
    x = _apply_of(node, "log")
    if x is None:
        return None
    if isinstance(x, Sum) and x.axis is None and _apply_of(x.args[0], "exp") is not None:
        return LogSumExp.make(x.args[0].args[0], None)
    inner = _one_plus(x)
    if inner is not None and _apply_of(inner, "exp") is not None:
        return apply("softplus", inner.args[0])
    z = _apply_of(x, "sigmoid")
    if z is not None:
        return Neg.make(apply("softplus", Neg.make(z)))
    inner = _one_minus(x)
    if inner is not None and _apply_of(inner, "sigmoid") is not None:
        return Neg.make(apply("softplus", inner.args[0]))
    return None


def _spelled_sigmoid(node: Node):
    """exp(z) / (1 + exp(z)) = sigmoid(z); 1 / (1 + exp(-z)) = sigmoid(z)."""
    if not isinstance(node, Div):
        return None
    a, b = node.args
    inner = _one_plus(b)
    if inner is None or _apply_of(inner, "exp") is None:
        return None
    if a is inner:
        return apply("sigmoid", inner.args[0])
    if is_one_like(a) and isinstance(inner.args[0], Neg):
        return apply("sigmoid", inner.args[0].args[0])
    return None


def _cross_entropy(node: Node, done: dict):
    """y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z)) = y * z - softplus(z), exactly
    (log sigmoid(z) = z - softplus(z), log(1 - sigmoid(z)) = -softplus(z)): the binary
    cross-entropy with logits, whose gradient is sigmoid(z) - y. Read on the original operands
    (``done`` maps them to their rewritten forms)."""
    if not isinstance(node, Add):
        return None
    first, second = node.args
    for p, q in ((first, second), (second, first)):
        y, z = _times_log(p, "sigmoid")
        y1, z1 = _times_log(q, "one minus sigmoid")
        if y is not None and y1 is not None and z is z1 and _one_minus(y1) is y:
            y, z = done[id(y)], done[id(z)]
            return sub(mul(y, z), apply("softplus", z))
    return None


def _times_log(node: Node, kind: str):
    """(y, z) for y * log(sigmoid(z)) (kind "sigmoid") or y * log(1 - sigmoid(z)) (kind
    "one minus sigmoid"), the factors in either order; (None, None) otherwise."""
    if not isinstance(node, Mul):
        return None, None
    for y, other in (node.args, tuple(reversed(node.args))):
        x = _apply_of(other, "log")
        if x is None:
            continue
        if kind == "one minus sigmoid":
            x = _one_minus(x)
            if x is None:
                continue
        z = _apply_of(x, "sigmoid")
        if z is not None:
            return y, z
    return None, None


FORWARD_REWRITES = (_log_softmax, _log_exp, _spelled_softmax, _spelled_log, _spelled_sigmoid)
#: Rewrites that read the original operands of a node (a pattern its operands' own rewrites
#: would hide), each ``(node, done) -> node | None``.
FORWARD_PATTERNS = (_cross_entropy,)


def rewrite_forward(root: Node) -> Node:
    """``root`` with the identities in ``FORWARD_PATTERNS`` and ``FORWARD_REWRITES`` applied
    (each removes a node, or turns a spelled-out function into the function)."""
    done: dict[int, Node] = {}
    for n in postorder([root]):
        found = None
        for pattern in FORWARD_PATTERNS:
            found = pattern(n, done)
            if found is not None:
                break
        if found is not None:
            done[id(n)] = found
            continue
        args = tuple(done[id(a)] for a in n.args)
        m = with_args(n, args)
        for rewrite in FORWARD_REWRITES:
            r = rewrite(m)
            if r is not None:
                m = r
                break
        done[id(n)] = m
    return done[id(root)]


def simplify(node: Node) -> Node:
    """``node`` in textbook form.

    >>> from matcalc.expr import Var
    >>> X = Var.make("X", ("n", "n")); x = Var.make("x", ("n", 1))
    >>> str(simplify(X @ x + X.T @ x))
    '(X + X.T) @ x'
    >>> str(simplify((2 * (X @ x)).T))
    '2 * (x.T @ X.T)'
    """
    return simplify_all([node])[0]
