"""The elementwise scalar functions, as SymPy functions.

Contract: ``ELEMENTWISE[name]`` gives the SymPy function whose derivative (by ``sympy.diff``) is the
elementwise derivative matcalc uses, whether the function has kinks (points where it is not
differentiable: the numeric check warns near them) and the inputs it is defined on. Functions SymPy
lacks, or whose SymPy derivative is not usable on real arrays (``Abs`` differentiates through
``re``/``im``; ``sign`` to a Dirac delta), are defined here as SymPy ``Function`` subclasses with their
scalar derivative; each has a ``rewrite`` to elementary functions that the tests differentiate to
confirm that derivative.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy


class sigmoid(sympy.Function):
    """The logistic function 1 / (1 + exp(-x))."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sympy.exp(-x))


class softplus(sympy.Function):
    """log(1 + exp(x)), whose derivative is the sigmoid."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sympy.log(1 + sympy.exp(x))


class step(sympy.Function):
    """The unit step: 1 for x > 0, else 0. Its derivative is 0 wherever it exists (x != 0)."""

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((1, x > 0), (0, True))


class sign(sympy.Function):
    """The sign function; its derivative is 0 wherever it exists (x != 0)."""

    def fdiff(self, argindex=1):
        return sympy.S.Zero

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((1, x > 0), (-1, x < 0), (0, True))


class absolute(sympy.Function):
    """|x| on real numbers; derivative sign(x) for x != 0."""

    def fdiff(self, argindex=1):
        return sign(self.args[0])

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((x, x > 0), (-x, True))


class relu(sympy.Function):
    """max(x, 0); derivative step(x) for x != 0."""

    def fdiff(self, argindex=1):
        return step(self.args[0])

    def _eval_rewrite_as_Piecewise(self, x, **kwargs):
        return sympy.Piecewise((x, x > 0), (0, True))


@dataclass(frozen=True)
class Elementwise:
    """One elementwise function: its SymPy form, kinks, and the inputs it is defined on."""

    name: str
    sympy_function: object
    kink: bool = False          # not differentiable at 0: the check warns near it
    domain: str = "real"        # "real" or "positive" (log, sqrt)


ELEMENTWISE: dict[str, Elementwise] = {
    e.name: e
    for e in (
        Elementwise("exp", sympy.exp),
        Elementwise("log", sympy.log, domain="positive"),
        Elementwise("sin", sympy.sin),
        Elementwise("cos", sympy.cos),
        Elementwise("tanh", sympy.tanh),
        Elementwise("sigmoid", sigmoid),
        Elementwise("relu", relu, kink=True),
        Elementwise("abs", absolute, kink=True),
        Elementwise("sign", sign, kink=True),
        Elementwise("sqrt", sympy.sqrt, domain="positive"),
        Elementwise("softplus", softplus),
        Elementwise("step", step, kink=True),
    )
}

# SymPy function class → matcalc name, for turning derived scalar derivatives back into nodes.
SYMPY_TO_NAME: dict[type, str] = {
    sympy.exp: "exp", sympy.log: "log", sympy.sin: "sin", sympy.cos: "cos", sympy.tanh: "tanh",
    sigmoid: "sigmoid", relu: "relu", absolute: "abs", sign: "sign", softplus: "softplus",
    step: "step",
}
