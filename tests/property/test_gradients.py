"""Never a wrong gradient: random expressions against finite differences of their own ground truth.

For a drawn expression (a DAG with shared subexpressions, scalar or not), ``mc.grad`` with respect
to all its variables (and sometimes a subexpression too) either refuses with
``UnsupportedError`` or yields generated code whose every entry matches central differences of
the strategy's independent NumPy closure, taken against a random upstream G when the expression
is not a scalar. The derivation's own ``check()`` must be honest both ways: it passes what the
ground truth accepts and fails what it rejects (failing a right gradient only beside a kink, with
a warning). Any other exception fails the test.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, event, given, reject, settings
from hypothesis import strategies as st

import matcalc as mc
from matcalc import expr as E

import reference
from strategies import VARIABLES, Evaluation, argument, call_generated, cases, examples, kind_of

KINK_MARGIN = 1e-3      # draws with a relu/abs/sign/step argument this close to 0 are skipped
RTOL = 1e-5
STEPS = (1e-4, 1e-3, 1e-5)   # finite-difference steps; an entry must agree at one of them


def kinks_clear(kinks: list) -> bool:
    return all(np.min(np.abs(x)) >= KINK_MARGIN for _, x in kinks)


def signs(kinks: list) -> list:
    return [np.sign(x) for _, x in kinks]


class Objective:
    """sum(G * f) of the ground truth, as a function of one input (a variable or a node)."""

    def __init__(self, case, values: dict, weight: np.ndarray, target):
        self.case, self.values, self.weight, self.target = case, values, weight, target
        self.is_variable = target in {v.node for v in case.variables}
        if self.is_variable:
            self.x0 = values[target.name]
            self.center_signs = signs(case.evaluate(values)[1])
        else:
            # the subexpression's own value, then the expression with it as an input
            item = next(item for item in case.pool if item.node is target)
            self.x0 = Evaluation(values, case.sizes)(item)
            self.center_signs = signs(case.evaluate(values, {target: self.x0})[1])

    def __call__(self, x: np.ndarray) -> float:
        if self.is_variable:
            value, kinks = self.case.evaluate({**self.values, self.target.name: x})
        else:
            value, kinks = self.case.evaluate(self.values, {self.target: x})
        crossed = signs(kinks)
        if any(not np.array_equal(a, b) for a, b in zip(crossed, self.center_signs)):
            reject()            # the stencil crosses a kink: differences mean nothing here
        return float(np.sum(self.weight * value))

    def derivative(self, index: tuple, h: float) -> float:
        """A fourth-order central difference in one entry."""
        def at(t):
            x = self.x0.copy()
            x[index] += t
            return self(x)
        return (at(-2 * h) - 8 * at(-h) + 8 * at(h) - at(2 * h)) / (12 * h)


def finite_difference_mismatches(got, objective: Objective) -> list:
    """The entries of ``got`` that no finite difference of ``objective`` agrees with, as
    (index, generated, numeric) triples."""
    shape = objective.x0.shape
    got = np.asarray(got, dtype=float).reshape(shape)
    if not np.all(np.isfinite(got)):
        return [("non-finite", got, None)]
    fd = {h: np.zeros(shape) for h in STEPS}
    for index in np.ndindex(*shape):
        fd[STEPS[0]][index] = objective.derivative(index, STEPS[0])
    scale = max(float(np.max(np.abs(fd[STEPS[0]]))), 1e-3)
    # rounding: each value of f is off by a few ulps of its size, and a difference quotient
    # divides that by h (a true zero derivative of a large f differs from 0 by ~eps |f| / h)
    size = max(1.0, abs(objective(objective.x0)))
    bad = []
    for index in np.ndindex(*shape):
        ok = False
        for h in STEPS:
            if h != STEPS[0]:
                fd[h][index] = objective.derivative(index, h)
            noise = 100 * np.finfo(float).eps * size / h
            if abs(got[index] - fd[h][index]) <= RTOL * abs(fd[h][index]) + 1e-7 * scale + noise:
                ok = True
                break
        if not ok:
            bad.append((index, float(got[index]), float(fd[STEPS[0]][index])))
    return bad


def one_function_of(case, target) -> bool:
    """Whether the expression with ``target`` as an input is one function of it to matcalc's
    node and to the ground truth's closures, at a point near its own value. Constructions fold
    some subexpressions away or reorder them (u.T.T is u; (u @ u.T @ u @ u.T).T is that product
    again, its u.T now where u was), while the closures still compute through the item: the two
    then differentiate different functions, and neither answer is wrong."""
    values = case.values()
    item = next(item for item in case.pool if item.node is target)
    x0 = Evaluation(values, case.sizes)(item)
    x = x0 * np.random.default_rng(case.seed + 7).uniform(1.001, 1.01, x0.shape)
    stand_in = E.Var.make("stand_in_", target.shape, "matrix", check_name=False)
    (replaced,) = E.substitute([case.node], {target: stand_in})
    try:
        truth, _ = case.evaluate(values, {target: x})
        with np.errstate(all="ignore"):
            got = reference.evaluate(replaced, {**values, "stand_in_": x}, case.sizes)
    except (FloatingPointError, ArithmeticError):
        return False
    return bool(np.allclose(got, truth, rtol=1e-7, atol=1e-9))


def derive(case, data):
    """The derivation for all variables and, sometimes, one subexpression (None if refused)."""
    targets = [v.node for v in case.variables]
    subexpressions = case.subexpressions()
    if subexpressions and data.draw(st.booleans(), label="with a subexpression"):
        target = data.draw(st.sampled_from(subexpressions), label="subexpression").node
        if one_function_of(case, target):
            targets.append(target)
        else:
            event("subexpression: reordered or folded away by a construction, not a target")
    try:
        return mc.grad(case.node, targets), targets
    except mc.UnsupportedError as err:
        event(f"refused: {type(err).__name__}")
        return None, targets


def wrong_targets(case, res, targets) -> list[str]:
    """The labels of the targets whose generated gradient disagrees with finite differences of
    the ground truth (at the case's own inputs, with a random G for a non-scalar)."""
    values = case.values()
    value, _ = case.evaluate(values)
    rng = np.random.default_rng(case.seed + 1)
    weight = np.ones(value.shape) if case.node.is_scalar else rng.uniform(-1, 1, value.shape)
    extra = {} if res.upstream is None else \
        {res.upstream.name: argument(weight, kind_of(case.node))}
    grads = call_generated(res.numpy_function(), values, case.sizes, extra)
    grads = (grads,) if len(targets) == 1 else grads
    assert len(grads) == len(targets)
    wrong = []
    for target, label, g in zip(targets, res.wrt_names(), grads):
        if target in {v.node for v in case.variables}:
            # generated gradients come in the form of their variable
            kind = VARIABLES[target.name].kind
            if kind == "scalar":
                assert isinstance(g, float), f"d/d{label} should be a float, not {type(g)}"
            else:
                value_shape = values[target.name].shape
                want = value_shape if kind == "matrix" else (value_shape[0],)
                assert np.shape(g) == want, f"d/d{label} has shape {np.shape(g)}, not {want}"
        bad = finite_difference_mismatches(g, Objective(case, values, weight, target))
        if bad:
            wrong.append(f"d/d{label} disagrees with finite differences at (index, generated, "
                         f"numeric): {bad[:5]}")
    return wrong


@settings(max_examples=examples(200))
@given(case=cases(), data=st.data())
def test_every_gradient_entry_matches_finite_differences(case, data):
    values = case.values()
    _, kinks = case.evaluate(values)
    assume(kinks_clear(kinks))
    res, targets = derive(case, data)
    if res is None:
        return
    wrong = wrong_targets(case, res, targets)
    assert not wrong, "\n".join(wrong)
    with_subexpression = len(targets) > len(case.variables)
    event("targets: variables" + (" and a subexpression" if with_subexpression else ""))
    event(f"expression: {'scalar' if case.node.is_scalar else 'non-scalar, with G'}")


def test_gradient_with_respect_to_a_subexpression_that_a_rewrite_removes_in_part():
    A = mc.Matrix("A", "n", "n")
    res = mc.grad(mc.sum(mc.exp(A)) + mc.sum(mc.log(mc.exp(A))), [mc.exp(A)])
    rng = np.random.default_rng(0)
    a = rng.uniform(-2, 2, (3, 3))
    np.testing.assert_allclose(res.numpy_function()(A=a), 1 + 1 / np.exp(a), rtol=1e-12)


@settings(max_examples=examples(100))
@given(case=cases(), data=st.data())
def test_the_numeric_check_is_honest(case, data):
    """check() passes a right gradient and fails a wrong one (as the ground truth judges)."""
    res, targets = derive(case, data)
    if res is None:
        return
    try:
        report = res.check()
    except mc.DomainError:
        event("check: DomainError")
        return
    except mc.CheckError as err:
        report = err.report
        assert report is not None, str(err)
    values = case.values()
    _, kinks = case.evaluate(values)
    wrong = wrong_targets(case, res, targets) if kinks_clear(kinks) else None
    if report.ok:
        assert not wrong, "check() passed a gradient the ground truth rejects:\n" + \
            "\n".join(wrong)
        event("check: passed")
    elif wrong:
        event("check: rightly failed a wrong gradient")     # the test above reports it
    else:
        # a right gradient (or one beside a kink) failed: only when the check could not keep
        # its inputs away from a kink, as its warning says
        assert report.warnings, f"check() failed a right gradient:\n{report}"
        event("check: failed beside a kink, with a warning")


def test_check_with_a_dimension_only_used_as_a_number():
    A = mc.Matrix("A", "n", "n")
    mc.grad(mc.sum(A) / mc.dim("m"), A).check()


def test_check_of_a_scalar_subexpression_with_a_constant_gradient():
    a, b = mc.Scalar("a"), mc.Scalar("b")
    mc.grad(a + b - (a + b), [a + b]).check()


def test_check_accepts_an_exact_zero_gradient():
    shapes = {"X": ("n", "n"), "Y": ("n", "n")}
    res = mc.derive("trace(X @ Y) - trace(Y @ X)", wrt="X", shapes=shapes)
    assert str(res.gradient) == "zeros(n, n)"
    res.check()


def test_gradient_code_after_a_quotient_cancels():
    x, s = mc.Scalar("x"), mc.Scalar("s", domain="positive")
    res = mc.grad(x * mc.sum((s / s) ** 2, axis=1), x)
    assert res.numpy_function()(x=0.5, s=1.5) == 1.0


def test_check_of_a_scalar_subexpression_after_a_quotient_cancels():
    s = mc.Scalar("s", domain="positive")
    mc.grad((s / s) ** 2 @ (s / s) ** 2, [s / s]).check()


# R13: the gradient 4 * (sin(0) * cos(0)) of a scalar subexpression stayed unfolded, and a 1 x 1
# result printed as a number came back as a bare float, not a 1 x 1 array
def test_check_of_a_scalar_subexpression_with_a_gradient_of_constant_functions():
    A = mc.Matrix("A", "n", "n")
    z = mc.sum(A) - mc.sum(A)
    d = mc.grad(mc.sin(2 * z) ** 2, [z])
    assert [str(g) for g in d.gradient] == ["0"]          # 4 * (sin(0) * cos(0)) folded
    assert d.check().ok
    for f, expected in ((mc.sigmoid(z + 1), 0.19661193324148185), (mc.sum(A) * mc.softplus(z), 4.5)):
        d = mc.grad(f, [z])
        value = d.numpy_function()(A=np.ones((3, 3)))
        assert value.shape == (1, 1) and value[0, 0] == pytest.approx(expected)
        assert d.check().ok


# a sum along an axis of a scalar made of constants only (sigmoid(0)) printed np.sum(number,
# axis=1): a 1 x 1 sums to itself, and such scalars are arrays where NumPy needs one
def test_gradient_code_with_an_axis_sum_of_a_constant_scalar():
    sp = mc.Scalar("sp", domain="positive")
    Ap = mc.Matrix("Ap", "n", "m", domain="positive")
    u = mc.Vector("u", "n")
    e = (mc.sum(Ap).T @ u.T @ u) * mc.sum(mc.sigmoid(((sp ** -1 - sp ** -1) / sp).T), axis=1).T
    assert mc.grad(e, [Ap, sp, u]).check().ok
    z = mc.sum(Ap) - mc.sum(Ap)
    for f, expected in ((mc.sum(mc.softmax(mc.sigmoid(z)) * Ap), 1.0),       # softmax of one: 1
                        (mc.trace(mc.sigmoid(z)) * mc.sum(Ap), 0.5),
                        (mc.logsumexp(mc.sigmoid(z), axis=0) * mc.sum(Ap), 0.5)):
        res = mc.grad(f, Ap)
        assert res.check().ok
        np.testing.assert_allclose(res.numpy_function()(Ap=np.ones((2, 3))), expected)


# terms whose coefficients were 2 - n and n - 2 shared the "common factor" abs(n - 2): the
# gradient divided by it, 0 at n = 2 (ZeroDivisionError in the check; older code never settled)
def test_coefficients_opposite_in_a_dimension_share_no_absolute_value():
    sp, s = mc.Scalar("sp"), mc.Scalar("s")
    n = mc.dim("n")
    res = mc.grad(((sp + s) @ s).T * (s.T.T + (mc.sum(s.T) - n * s.T)), [sp, s])
    assert "abs" not in str(res)
    for size in (2, 3, 5):
        assert res.check(n=size).ok
    grads = mc.grad((2 - n) * sp + (n - 2) * s, [sp, s]).gradients
    assert [str(g) for g in grads] == ["2 - n", "n - 2"]


# the first result updated erf(s)'s array in place (t += ...) while the second, 2 * erf(s),
# had been printed as t_1 = 2 * t before it and was then written t *= 2 after: the second
# gradient came out as 2 * (the first) instead of 2 * erf(s)
def test_a_result_already_computed_is_not_recomputed_from_an_updated_temporary():
    s, sp = mc.Scalar("s"), mc.Scalar("sp", domain="positive")
    e = mc.sum(mc.erf(s).T) * (mc.sum(s) + (sp + mc.erf(s).T) / sp * (2 * sp))
    res = mc.grad(e, [s, sp])
    from math import erf, exp, pi, sqrt
    x, y = 0.3, 1.7
    # e = erf(s) * (s + 2 sp + 2 erf(s))
    ds = erf(x) + 2 / sqrt(pi) * exp(-x * x) * (x + 2 * y + 4 * erf(x))
    got = res.numpy_function()(s=x, sp=y)
    np.testing.assert_allclose(got, (ds, 2 * erf(x)), rtol=1e-12)
    assert res.check().ok
