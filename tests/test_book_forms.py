"""Forms a textbook prints: named intermediates, the book's simplifications, stable code.

Values are checked against NumPy written here (never against matcalc itself): each rewrite is
tested on the values before and after, and the printed forms are evaluated line by line by the
form table's own interpreter (tests/forms/harness.py), which does not use matcalc.
"""

from __future__ import annotations

import numpy as np
import pytest

import matcalc as mc
from matcalc import expr as E
from matcalc.printing.names import expand
from matcalc.simplify import rewrite_forward, simplify

from forms import harness as H
from forms.cases import CASES
from reference import deep_tanh_network

BY_ID = {c.id: c for c in CASES}


def _sigmoid(z):
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def _derive(case_id):
    case = BY_ID[case_id]
    wrt = list(case.wrt) if len(case.wrt) > 1 else case.wrt[0]
    how = {"jacobian": mc.jacobian, "hessian": mc.hessian}.get(case.kind, mc.derive)
    return how(case.text, wrt, shapes=case.shapes, domains=case.domains)


# ---------------------------------------------------------------------------------------------
# Named intermediates
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("case_id", ["layer-norm", "batch-norm", "lstm-c-h"])
def test_norms_and_the_lstm_cell_print_in_a_few_short_definitions(case_id):
    res = _derive(case_id)
    named = res.named()
    assert 1 <= len(named.definitions) <= 8
    lines = res.text().splitlines()
    assert len(lines) == len(named.definitions) + len(res.wrt)
    assert all(len(line) <= 100 for line in lines[:len(named.definitions)]), lines
    # substituting the definitions back gives the very gradients: naming changes no value
    assert tuple(expand(named)) == tuple(res.gradients)


def test_the_printed_definitions_evaluate_to_the_books_values():
    case = BY_ID["lstm-c-h"]
    chosen, env = H.draw(case, 0)
    got = H.evaluate_lines(_derive("lstm-c-h").text(), env, chosen)
    want = H.book_values(case, chosen, env)
    for g, w in zip(got, want):
        np.testing.assert_allclose(H._as_2d(g), w, rtol=1e-10, atol=1e-12)


def test_a_fifty_layer_network_prints_in_linear_size():
    n, depth = 3, 50
    res, values, want = deep_tanh_network(n, depth)
    text = res.text()
    assert len(text) < 60 * 2 * depth                  # linear: a line or two per layer
    assert isinstance(res.gradient, E.Node)            # the result itself stays the expression
    # the printed definitions compute the gradient NumPy's own backpropagation gives
    got = H.evaluate_lines(text, values, {"n": n})[-1]
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_small_results_stay_one_line():
    res = mc.derive("sum((X @ w - y) ** 2)", "w", shapes={"X": ("m", "d"), "w": ("d",),
                                                          "y": ("m",)})
    assert res.text() == "2 * X.T @ (X @ w - y)"
    assert res.latex() == mc.to_latex(res.gradient)


def test_latex_equations_carry_the_definitions():
    res = _derive("lstm-c-h")
    equations = res.equations()
    assert len(equations) == len(res.named().definitions) + 2
    assert equations[0].startswith("s = ") and r"\sigma" in equations[0]
    assert "<math" in res.mathml()


# ---------------------------------------------------------------------------------------------
# The book's simplifications, on values before and after
# ---------------------------------------------------------------------------------------------

SHAPES = {"z": ("n",), "y": ("n",), "X": ("m", "d"), "w": ("d",), "A": ("n", "n"),
          "S": ("n", "n"), "V": ("m", "k"), "M": ("m", "k")}
DOMAINS = {"V": "positive", "M": "positive", "S": "symmetric"}

#: (text, the form it becomes, a NumPy function of the inputs giving the value of both)
REWRITES = [
    ("exp(z) / sum(exp(z))", "softmax(z)",
     lambda v: np.exp(v["z"]) / np.exp(v["z"]).sum()),
    ("log(sum(exp(z)))", "logsumexp(z)", lambda v: np.log(np.exp(v["z"]).sum())),
    ("log(1 + exp(z))", "softplus(z)", lambda v: np.log1p(np.exp(v["z"]))),
    ("exp(z) / (1 + exp(z))", "sigmoid(z)", lambda v: 1 / (1 + np.exp(-v["z"]))),
    ("log(sigmoid(z))", "-softplus(-z)", lambda v: np.log(1 / (1 + np.exp(-v["z"])))),
    ("log(1 - sigmoid(z))", "-softplus(z)", lambda v: np.log(1 - 1 / (1 + np.exp(-v["z"])))),
    ("y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z))", "y * z - softplus(z)",
     lambda v: v["y"] * np.log(_sigmoid(v["z"])) + (1 - v["y"]) * np.log(1 - _sigmoid(v["z"]))),
]


def _values(seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((4, 4))
    return {"z": rng.standard_normal((4, 1)), "y": rng.uniform(0, 1, (4, 1)),
            "X": rng.standard_normal((5, 3)), "w": rng.standard_normal((3, 1)),
            "A": rng.standard_normal((4, 4)), "S": (m + m.T) / 2,
            "V": rng.uniform(0.5, 2, (5, 2)), "M": rng.uniform(0.5, 2, (5, 2))}


@pytest.mark.parametrize("text, form, reference", REWRITES, ids=[r[1] for r in REWRITES])
def test_a_spelled_out_function_becomes_the_function(text, form, reference):
    node = mc.parse(text, SHAPES, DOMAINS)
    rewritten = rewrite_forward(node)
    assert str(simplify(rewritten)) == form
    values, sizes = _values(), {"n": 4, "m": 5, "d": 3, "k": 2}
    before = H._as_2d(H.evaluate(text, values, sizes))
    after = H._as_2d(H.evaluate(str(rewritten), values, sizes))
    np.testing.assert_allclose(before, H._as_2d(reference(values)), rtol=1e-12)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-14)


#: (text, simplified form, NumPy value of both)
SIMPLIFICATIONS = [
    ("det(A) / det(A) ** 2", "1 / det(A)", lambda v: 1 / np.linalg.det(v["A"])),
    ("z / (z ** 2) ** 2", "1 / z ** 3", lambda v: 1 / v["z"] ** 3),
    ("V ** 2 / (V / M) / M ** 2", "V / M", lambda v: v["V"] / v["M"]),
    ("sign(det(A)) * det(A) / abs(det(A))", "1", lambda v: np.ones((1, 1))),
    ("sum(eye(n) * A)", "trace(A)", lambda v: np.trace(v["A"])),
    ("relu(z) * step(z)", "relu(z)", lambda v: np.maximum(v["z"], 0)),
    ("S.T + inv(S).T", "S + inv(S)", lambda v: v["S"] + np.linalg.inv(v["S"])),
    ("inv(X.T @ X).T", "inv(X.T @ X)", lambda v: np.linalg.inv(v["X"].T @ v["X"])),
    ("sum(softmax(z))", "1", lambda v: np.ones((1, 1))),
    # a repeated scalar: its powers and quotients come out of products and merge
    ("z / (norm(z) * ones(n)) ** 2", "z / norm(z) ** 2",
     lambda v: v["z"] / np.linalg.norm(v["z"]) ** 2),
    ("A @ (z / norm(z)) / norm(z) ** 2", "(A @ z) / norm(z) ** 3",
     lambda v: v["A"] @ v["z"] / np.linalg.norm(v["z"]) ** 3),
    ("(A / det(S)).T", "A.T / det(S)", lambda v: v["A"].T / np.linalg.det(v["S"])),
    ("det(S) ** 2 * (A / det(S))", "det(S) * A", lambda v: np.linalg.det(v["S"]) * v["A"]),
    ("(A @ A.T / det(S)).T", "(A @ A.T) / det(S)", lambda v: v["A"] @ v["A"].T
     / np.linalg.det(v["S"])),
    # each row of the identity sums to one; decimals stay as typed, not (1/10) (9 y + 1/n)
    ("sum(eye(n), axis=0)", "ones(n)", lambda v: np.ones((4, 1))),
    ("0.9 * y + 0.1 / n", "0.9 * y + 0.1/n", lambda v: 0.9 * v["y"] + 0.1 / 4),
    # mirrored terms merge: (z.T @ S).T = S @ z for a symmetric S
    ("z.T @ S - 2 * z.T + (S @ z - 2 * z).T", "2 * (z.T @ S - 2 * z.T)",
     lambda v: 2 * (v["z"].T @ v["S"] - 2 * v["z"].T)),
    # a centred matrix sums to zero along the axis it was centred on, times what is constant
    # along that axis (batch norm's gradient), and not along the other
    ("sum(X - mean(X, axis=0, keepdims=True), axis=0)", "zeros(d)", lambda v: np.zeros((3, 1))),
    ("sum(z - mean(z))", "0", lambda v: np.zeros((1, 1))),
    ("sum(X + w.T * (X - mean(X, axis=0, keepdims=True)) / w.T ** 2, axis=0)", "sum(X, axis=0)",
     lambda v: v["X"].sum(axis=0)[:, None]),
    ("sum(-(X - mean(X, axis=1, keepdims=True)).T, axis=0)", "zeros(m)",
     lambda v: np.zeros((5, 1))),
    # two repeated numbers multiply to one repeated number
    ("(2 * ones(n)) * (det(A) * ones(n))", "2 * det(A) * ones(n)",
     lambda v: 2 * np.linalg.det(v["A"]) * np.ones((4, 1))),
    ("(det(A) * ones(m, d)) / (4 * ones(m, d))", "(1/4) * det(A) * ones(m, d)",
     lambda v: np.linalg.det(v["A"]) / 4 * np.ones((5, 3))),
    ("sum(A - mean(A, axis=1, keepdims=True), axis=0)",
     "sum(A - (1/n) * (sum(A, axis=1, keepdims=True) * ones(n, n)), axis=0)",
     lambda v: (v["A"] - v["A"].mean(axis=1, keepdims=True)).sum(axis=0)[:, None]),
]


@pytest.mark.parametrize("text, form, reference", SIMPLIFICATIONS,
                         ids=[s[0] for s in SIMPLIFICATIONS])
def test_the_books_simplification_keeps_the_value(text, form, reference):
    node = simplify(mc.parse(text, SHAPES, DOMAINS))
    assert str(node) == form
    values, sizes = _values(), {"n": 4, "m": 5, "d": 3, "k": 2}
    before = H._as_2d(H.evaluate(text, values, sizes))
    np.testing.assert_allclose(before, H._as_2d(reference(values)), rtol=1e-10, atol=1e-12)
    after = H._as_2d(H.evaluate(str(node), values, sizes))
    np.testing.assert_allclose(after * np.ones_like(before), before, rtol=1e-10, atol=1e-12)


def test_labels_in_0_1_and_in_plus_minus_1():
    y = mc.Vector("y", "n", domain="binary")
    s = mc.Vector("s", "n", domain="sign")
    assert str(simplify(y ** 2)) == "y"
    assert str(simplify(s ** 2)) == "ones(n)"
    res = mc.grad(mc.sum(y ** 2 * mc.Vector("z", "n") ** 2), "z")
    assert res.check().ok                        # drawn in {0, 1}, as declared


def test_rows_that_are_probability_vectors():
    """probability_rows: each row sums to one (a batch stored one example per row), so a
    row-major softmax cross-entropy's gradient is softmax - Y; the check draws such rows."""
    X, W = mc.Matrix("X", "m", "d"), mc.Matrix("W", "d", "c")
    Y = mc.Matrix("Y", "m", "c", domain="probability_rows")
    assert str(simplify(mc.sum(Y, axis=1))) == "ones(m)"
    res = mc.grad(-mc.sum(Y * mc.log(mc.softmax(X @ W, axis=1))), W)
    assert res.text() == "X.T @ (softmax(X @ W, axis=1) - Y)"
    assert res.check().ok
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    y = rng.dirichlet(np.ones(4), size=5)
    p = np.exp(x @ w) / np.exp(x @ w).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(res.numpy_function()(Y=y, X=x, W=w), x.T @ (p - y), rtol=1e-12)
    # undeclared, the rows' sums stay: matcalc never assumes labels sum to one
    Yr = mc.Matrix("Yr", "m", "c")
    plain = mc.grad(-mc.sum(Yr * mc.log(mc.softmax(X @ W, axis=1))), W)
    assert "sum(Yr, axis=1" in plain.text()
    drawn = mc.check.draw(Y, {"m": 5, "c": 4}, rng)
    np.testing.assert_allclose(drawn.sum(axis=1), np.ones(5))
    assert (drawn > 0).all()


def test_a_symmetric_matrix_is_drawn_symmetric_and_drops_its_transposes():
    S = mc.Matrix("S", "n", "n", domain="symmetric")
    x = mc.Vector("x", "n")
    res = mc.grad(x.T @ S @ x, x)
    assert res.text() == "2 * S @ x"
    assert res.check().ok


@pytest.mark.parametrize("case_id, form", [
    ("binary-cross-entropy", "X.T @ (sigmoid(X @ w) - y)"),
    ("softplus-spelled-out", "X.T @ sigmoid(X @ w)"),
    ("softmax-cross-entropy-spelled-out", "softmax(z) - y"),
    ("cookbook-55-tall", "2 * X @ inv(X.T @ X)"),
    ("nmf-kl", "d/dW = (1 - V / (W @ H)) @ H.T\nd/dH = W.T @ (1 - V / (W @ H))"),
])
def test_the_books_form(case_id, form):
    assert _derive(case_id).text() == form


@pytest.mark.parametrize("case_id, form", [
    ("label-smoothing", "softmax(z) - (0.9 * y + 0.1/c)"),
    ("normalise-jacobian", "eye(n) / norm(x) - (x @ x.T) / norm(x) ** 3"),
    ("rayleigh-quotient", "2 * ((A @ x) / (x.T @ x) - (x.T @ A @ x) / (x.T @ x) ** 2 * x)"),
    ("pseudo-huber", "X.T @ ((X @ w - y) / sqrt(1 + ((X @ w - y) / delta) ** 2))"),
])
def test_the_papers_form(case_id, form):
    """Cases that reach the book's form through the rules above (their values: the form
    table)."""
    assert _derive(case_id).text() == form


# ---------------------------------------------------------------------------------------------
# Generated code is finite wherever the formula is
# ---------------------------------------------------------------------------------------------

def test_binary_cross_entropy_code_is_finite_at_large_logits():
    res = mc.derive("-sum(y * log(sigmoid(X @ w)) + (1 - y) * log(1 - sigmoid(X @ w)))", "w",
                    shapes={"X": ("m", "d"), "w": ("d",), "y": ("m",)})
    X = np.array([[800.0, 0.0], [-800.0, 0.0], [40.0, 1.0], [0.5, -0.25]])
    w = np.array([1.0, 2.0])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    got = res.numpy_function()(X=X, w=w, y=y)
    want = X.T @ (_sigmoid(X @ w) - y)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_softplus_spelled_out_code_is_finite_past_exp_overflow():
    res = mc.derive("sum(log(1 + exp(X @ w)))", "w", shapes={"X": ("m", "d"), "w": ("d",)})
    X = np.array([[710.0, 0.0], [800.0, 1.0], [-800.0, 0.0]])
    w = np.array([1.0, 0.5])
    got = res.numpy_function()(X=X, w=w)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, X.T @ _sigmoid(X @ w), rtol=1e-12)


def test_nmf_kl_code_is_finite_with_zeros_in_the_counts():
    case = BY_ID["nmf-kl"]
    res = mc.derive(case.text, ["W", "H"], shapes=case.shapes, domains=case.domains)
    rng = np.random.default_rng(3)
    W, Hm = rng.uniform(0.5, 2, (4, 2)), rng.uniform(0.5, 2, (2, 3))
    V = rng.integers(0, 3, (4, 3)).astype(float)
    V[0, :] = 0.0                                   # count data: zeros
    dW, dH = res.numpy_function()(V=V, W=W, H=Hm)
    R = 1 - V / (W @ Hm)
    assert np.all(np.isfinite(dW)) and np.all(np.isfinite(dH))
    np.testing.assert_allclose(dW, R @ Hm.T, rtol=1e-12)
    np.testing.assert_allclose(dH, W.T @ R, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Notation
# ---------------------------------------------------------------------------------------------

def test_a_row_sum_of_a_hadamard_product_gets_its_brackets_and_a_bold_one():
    A, B = mc.Matrix("A", "n", "m"), mc.Matrix("B", "n", "m")
    latex = mc.to_latex(mc.sum(A * B, axis=1))
    assert latex == r"\left(A \odot B\right) \mathbf{1}"
    assert 'mathvariant="bold">1<' in mc.to_mathml(latex)
    b = mc.Vector("b", "n")
    assert 'mathvariant="bold">1<' in mc.to_mathml(b * mc.ones("n", "m"))    # b 1ᵀ, not b₁
