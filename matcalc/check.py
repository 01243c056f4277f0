"""Numeric check: derived gradients against central finite differences, in float64.

Contract: the check draws random inputs that respect each variable's domain (``draw``), with
distinct sizes for distinct dimensions so a missing transpose cannot hide, and a random upstream
gradient G for a non-scalar expression.
For every variable it compares every entry of the generated gradient (a random sample of 64
entries and 3 random directions, for larger variables) with the central difference of
sum(G * f), and reports the worst relative error. Inputs within reach of a kink (the points each
function's stanza declares: relu, abs, sign, step at 0) are redrawn, and a warning is kept when
that does not help. A variable under a function defined on part of the real line only is drawn
inside it, or must be declared so (``input_domains``). Non-finite values at the
drawn inputs raise ``DomainError``. The pieces (``draw_inputs``, ``objective``, ``compare``) are
put together by ``Derivation.check``, which raises ``CheckError`` when the report says it failed;
this module never raises ``CheckError`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import DomainError, domain_hint
from .expr import postorder
from .ops import operation_of

DEFAULT_SIZES = (3, 4, 5, 2, 6, 7, 8, 9, 10, 11)
MAX_FULL_ENTRIES = 64
STEP = 1e-6          # relative step: central differences in float64 err by ~1e-10 here
#: A second, larger step: where intermediate values cancel (sum(2 X) - sum(2 X) + ...), the
#: rounding error of a difference at STEP is far above |f|'s size; at WIDE_STEP it is 100 times
#: smaller. An entry agrees when it agrees at either step (truncation error at WIDE_STEP is
#: ~1e-8 relative for smooth functions, far below the tolerance).
WIDE_STEP = 1e-4
KINK_MARGIN = 1e-4   # an input this close to a kink is redrawn
DEFAULT_TOLERANCE = 1e-5
NOISE = 1e-4         # tolerance x NOISE x max(1, |f|): an error below it is difference noise


@dataclass
class VariableResult:
    """The comparison for one variable."""

    name: str
    max_abs_error: float
    max_rel_error: float
    entries: int
    directions: int
    ok: bool


@dataclass
class CheckReport:
    """What a numeric check measured. ``ok`` is False when any variable's error is too large."""

    ok: bool
    results: list
    sizes: dict
    tolerance: float
    seed: int
    warnings: list = field(default_factory=list)

    @property
    def worst(self) -> float:
        """The worst relative error over all variables."""
        return max((r.max_rel_error for r in self.results), default=0.0)

    def __str__(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in self.sizes.items()) or "none"
        head = "PASSED" if self.ok else "FAILED"
        lines = [f"numeric check {head}: worst relative error {self.worst:.2e} "
                 f"(tolerance {self.tolerance:.0e}; sizes {sizes}; seed {self.seed})"]
        for r in self.results:
            mark = "ok" if r.ok else "WRONG"
            how = f"{r.entries} entries" + (f", {r.directions} directions" if r.directions else "")
            lines.append(f"  d/d{r.name}: relative error {r.max_rel_error:.2e}, absolute "
                         f"{r.max_abs_error:.2e} over {how} — {mark}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def choose_sizes(dims: list, given: dict) -> dict:
    """Sizes for the symbolic dimensions: the given ones, then distinct defaults."""
    sizes: dict = {}
    for d in dims:
        if d.name in given:
            value = given[d.name]
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DomainError(f"size of {d.name} must be a positive integer, not {value!r}")
            sizes[d.name] = value
    unknown = set(given) - {d.name for d in dims}
    if unknown:
        raise DomainError(f"no dimension named {', '.join(sorted(unknown))} in this expression")
    free = [s for s in DEFAULT_SIZES if s not in sizes.values()]
    for d in dims:
        if d.name not in sizes:
            sizes[d.name] = free.pop(0) if free else 3
    return sizes


def concrete_shape(var, sizes: dict) -> tuple:
    """The NumPy shape of a variable's argument: 2-D for matrices, 1-D vectors, () scalars."""
    rows, cols = (int(d.subs({s: sizes[s.name] for s in d.free_symbols})) for d in var.shape)
    if var.kind == "scalar":
        return ()
    if var.kind == "vector":
        return (rows,)
    return (rows, cols)


def draw(var, sizes: dict, rng: np.random.Generator, domain: str | None = None) -> np.ndarray:
    """A random value for ``var`` inside its domain (or ``domain``, where the check draws it
    narrower than declared).

    positive: entries uniform on [0.5, 2]. spd: M M^T / n + I (well conditioned). invertible:
    a normal matrix plus 2 sqrt(n) I — non-symmetric, so a missing transpose shows, and far
    from singular. probability: entries from a Dirichlet distribution (each column of a
    matrix sums to one); probability_rows: each row from one. symmetric: (M + M^T) / 2. binary:
    entries 0 or 1. sign: entries -1 or +1. real: standard normal.
    """
    shape = concrete_shape(var, sizes)
    domain = var.domain if domain is None else domain
    if domain in FUNCTION_DOMAINS:
        return rng.uniform(*FUNCTION_DOMAINS[domain], size=shape)
    if domain == "spd":
        n = shape[0]
        m = rng.standard_normal((n, n))
        return m @ m.T / n + np.eye(n)
    if domain == "invertible":
        n = shape[0]
        return rng.standard_normal((n, n)) + 2 * np.sqrt(n) * np.eye(n)
    if domain == "symmetric":
        m = rng.standard_normal((shape[0], shape[0]))
        return (m + m.T) / 2
    if domain == "binary":
        return rng.integers(0, 2, size=shape).astype(float)
    if domain == "sign":
        return rng.choice(np.array([-1.0, 1.0]), size=shape)
    if domain == "probability":
        columns = 1 if len(shape) < 2 else shape[1]
        rows = shape[0] if shape else 1
        p = rng.dirichlet(np.ones(rows), size=columns).T
        return p.reshape(shape)
    if domain == "probability_rows":
        columns = shape[-1] if shape else 1
        rows = shape[0] if len(shape) == 2 else 1
        return rng.dirichlet(np.ones(columns), size=rows).reshape(shape)
    return rng.standard_normal(size=shape)


#: How the check draws an input of a function defined on part of the real line only (each
#: function's stanza names its domain): entries uniform on these intervals, away from the ends.
FUNCTION_DOMAINS = {"positive": (0.5, 2.0), "nonnegative": (0.5, 2.0),
                    "greater than -1": (-0.5, 2.0), "open unit interval": (-0.9, 0.9),
                    "between the poles": (-1.2, 1.2)}
#: Function domains a variable can be declared to have (so the user declares it).
DECLARABLE = {"positive": "positive", "nonnegative": "positive"}


def input_domains(expression, variables: list) -> dict:
    """Where to draw each variable that is the argument of a function defined on part of the
    real line only (its stanza's ``domain``): a variable declared real under log or sqrt is an
    error that says to declare it positive; under a function whose domain no declaration names
    (log1p: x > -1), it is drawn inside that domain. Returns name -> domain to draw from."""
    narrowed: dict[str, str] = {}
    for node in postorder([expression]):
        op = operation_of(node)
        if op is None or op.function is None or op.domain == "real":
            continue
        var = node.args[0]
        if not (getattr(var, "domain", None) == "real" and var in variables):
            continue
        if op.domain in DECLARABLE:
            raise DomainError(
                f"{op.name}({var.name}) is defined for {op.domain} {var.name} only, but "
                f"{var.name} is declared real; declare such variables positive, e.g. "
                f"{domain_hint(var.name, DECLARABLE[op.domain])}")
        narrowed[var.name] = op.domain
    return narrowed


def draw_inputs(variables: list, sizes: dict, seed: int, upstream=None,
                kinks: Callable | None = None, attempts: int = 10,
                domains: dict | None = None) -> tuple[dict, list]:
    """Random inputs (and a random upstream G), redrawn while one sits at a kink; ``domains``
    narrows where some variables are drawn (``input_domains``).

    Returns the inputs by name and the warnings worth reporting.
    """
    warnings: list[str] = []
    domains = domains or {}
    rng = np.random.default_rng(seed)
    for _ in range(attempts):
        inputs = {v.name: draw(v, sizes, rng, domains.get(v.name)) for v in variables}
        if upstream is not None:
            inputs[upstream.name] = rng.standard_normal(size=concrete_shape(upstream, sizes))
        closest = _closest_to_kink(kinks, {v.name: inputs[v.name] for v in variables})
        if closest is None or closest > KINK_MARGIN * 10:
            break
    else:
        warnings.append(f"an input of a function with a kink (relu, abs, ...) stays within "
                        f"{closest:.1e} of it after {attempts} draws; finite differences there "
                        f"are unreliable")
    return inputs, warnings


def objective(value: Callable, weight: np.ndarray | None) -> Callable[[dict], float]:
    """The scalar whose gradient is checked: sum(weight * value(**inputs)) (weight G, or 1)."""
    def f(inputs: dict) -> float:
        with np.errstate(all="ignore"):      # non-finite values are reported, not warned about
            out = np.asarray(value(**inputs), dtype=float)
        w = 1.0 if weight is None else np.asarray(weight, dtype=float).reshape(out.shape)
        return float(np.sum(out * w))
    return f


def ensure_finite(f: Callable[[dict], float], inputs: dict) -> None:
    """Raise DomainError when the expression is not finite at the drawn inputs."""
    if not np.isfinite(f(inputs)):
        raise DomainError("the expression is not finite at the drawn inputs (a log or sqrt of a "
                          "negative number?); declare such variables positive, e.g. "
                          f"{domain_hint('X', 'positive')}")


def compare(label: str, name: str, gradient: np.ndarray, inputs: dict, f: Callable,
            tolerance: float, seed: int) -> VariableResult:
    """Compare ``gradient`` with central differences of ``f`` in the input ``name``.

    Errors are relative to the larger gradient, but never to less than the noise of a central
    difference (about 1e-10 of the function's size at this step): an exact zero gradient
    passes, a wrong one of any visible size fails.
    """
    floor = NOISE * max(1.0, abs(f(inputs)))
    result = _compare(label, np.asarray(gradient, dtype=float), name, inputs, f,
                      np.random.default_rng(seed + 1), floor)
    result.ok = bool(np.isfinite(result.max_rel_error) and result.max_rel_error <= tolerance)
    return result


def _closest_to_kink(kinks, inputs) -> float | None:
    if kinks is None:
        return None
    arrays = kinks(**inputs)
    values = [np.min(np.abs(np.asarray(a, dtype=float))) for a in arrays]
    return float(min(values)) if values else None


def _compare(label: str, g: np.ndarray, name: str, args: dict, objective, rng,
             floor: float) -> VariableResult:
    x = np.array(args[name], dtype=float)
    if g.shape != x.shape:
        return VariableResult(label, float("inf"), float("inf"), 0, 0, False)
    flat = x.reshape(-1)
    size = flat.size
    chosen = range(size) if size <= MAX_FULL_ENTRIES else rng.choice(size, MAX_FULL_ENTRIES,
                                                                      replace=False)
    directions_used = []
    for e in chosen:
        direction = np.zeros(size)
        direction[e] = 1.0
        directions_used.append(direction)
    directions = 0
    if size > MAX_FULL_ENTRIES:
        for _ in range(3):
            directions_used.append(rng.standard_normal(size))
            directions += 1
    flat_g = g.reshape(-1)
    got = np.array([float(flat_g @ d) for d in directions_used])
    fd = np.array([_central(name, x, d, args, objective) for d in directions_used])
    wide = np.array([_central(name, x, d, args, objective, WIDE_STEP) for d in directions_used])
    abs_err, rel = _errors(got, _nearer(got, fd, wide), floor)
    return VariableResult(label, abs_err, rel, len(chosen), directions, True)


def _errors(got: np.ndarray, fd: np.ndarray, floor: float) -> tuple[float, float]:
    """The worst absolute difference, and it relative to the larger of the two arrays (never
    to less than ``floor``)."""
    abs_err = float(np.max(np.abs(got - fd))) if fd.size else 0.0
    scale = max(float(np.max(np.abs(fd))) if fd.size else 0.0,
                float(np.max(np.abs(got))) if got.size else 0.0, floor)
    return abs_err, abs_err / scale


def _nearer(got: np.ndarray, fd: np.ndarray, wide: np.ndarray) -> np.ndarray:
    """Entry by entry, the difference quotient (at STEP or WIDE_STEP) nearer to ``got``."""
    return np.where(np.abs(got - fd) <= np.abs(got - wide), fd, wide)


def _central(name, x, direction, args, objective, step: float = STEP) -> float:
    flat = x.reshape(-1)
    h = step * max(1.0, float(np.max(np.abs(flat))))
    plus = dict(args)
    minus = dict(args)
    plus[name] = (flat + h * direction).reshape(x.shape)
    minus[name] = (flat - h * direction).reshape(x.shape)
    return (objective(plus) - objective(minus)) / (2 * h)


def compare_matrix(label: str, got, inner: Callable, name: str, inputs: dict,
                   direction=None, tolerance: float = DEFAULT_TOLERANCE,
                   skip: tuple = ()) -> VariableResult:
    """Check a Jacobian or Hessian column by column, or a Hessian-vector product along its
    direction, against central differences of ``inner`` (the function, for a Jacobian; its
    generated gradient, for a Hessian) in the input ``name``."""
    x = np.array(inputs[name], dtype=float)
    base = {k: v for k, v in inputs.items() if k not in skip}

    def at(value) -> np.ndarray:
        return np.asarray(inner(**{**base, name: value}), dtype=float).reshape(-1)

    def differences(relative_step: float) -> np.ndarray:
        h = relative_step * max(1.0, float(np.max(np.abs(x))) if x.size else 1.0)
        if direction is not None:
            return (at(x + h * direction) - at(x - h * direction)) / (2 * h)
        columns = []
        for j in range(x.size):
            step = np.zeros(x.size)
            step[j] = h
            step = step.reshape(x.shape)
            columns.append((at(x + step) - at(x - step)) / (2 * h))
        return np.stack(columns, axis=1)

    fd = differences(STEP)
    entries = fd.size
    got = np.asarray(got, dtype=float)
    if got.size != fd.size:
        return VariableResult(label, float("inf"), float("inf"), 0, 0, False)
    got = got.reshape(fd.shape)
    abs_err, rel = _errors(got, _nearer(got, fd, differences(WIDE_STEP)), 1e-8)
    return VariableResult(label, abs_err, rel, entries, 0, bool(np.isfinite(rel) and
                                                                rel <= tolerance))
