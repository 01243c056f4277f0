"""The form table: gradients, Jacobians and Hessians with the form a book or paper prints.

Each ``Case`` holds what matcalc is asked (the expression ``text``, ``shapes``, ``domains``,
``kind`` and ``wrt``) and the book's answer in matcalc's text syntax: ``book``, one result per
variable of ``wrt``, in terms of the named definitions ``defs`` (an ordered list of
``(name, text)``, each in terms of the variables and the definitions before it, as textbooks
print layer norm: x̂ = ..., then the gradient). ``source`` says where the form is printed: a
Matrix Cookbook equation number (Petersen & Pedersen, version of November 15, 2012), or the
paper or textbook of an ML form. Where the book prints an entrywise identity, the case states
the vector-Jacobian product it amounts to, with the upstream gradient ``G``.

- ``domains`` are the ones matcalc has today. ``future_domains`` marks what the book assumes but
  matcalc cannot be told yet (``symmetric``, ``binary``, ``sign``): values are drawn there, and
  matcalc is given the nearest domain it has (``spd`` for a symmetric matrix that may as well be
  positive definite, ``real`` for labels).
- ``natural_text`` is how a user would write the expression (NumPy's spelling, the paper's)
  where matcalc refuses it today; ``text`` is then the nearest spelling it accepts.
- ``sizes`` fixes dimension sizes the book needs (a tall X: n > k); ``layout="vec"`` says the
  book's result is the Kronecker (vec) form of a tensor.
- ``cookbook`` is the label of the same identity in ``tests/cookbook/identities.py``.

Shapes are written compactly: ``"X[m,d] w[d] lam[]"`` is a matrix, a vector and a scalar, and
domains as ``"lam:positive S:spd"``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KINDS = ("grad", "jacobian", "hessian")
FUTURE_DOMAINS = ("symmetric", "binary", "sign")


@dataclass(frozen=True, eq=False)
class Case:
    """One row of the form table."""

    id: str
    kind: str
    text: str
    wrt: tuple
    shapes: dict
    book: tuple
    source: str
    defs: tuple = ()
    domains: dict = field(default_factory=dict)
    future_domains: dict = field(default_factory=dict)
    natural_text: str | None = None
    sizes: dict = field(default_factory=dict)
    layout: str = "matrix"
    cookbook: str | None = None
    note: str = ""

    def __repr__(self) -> str:
        return f"<Case {self.id}>"


def _shapes(spec: str) -> dict:
    out = {}
    for name, dims in re.findall(r"(\w+)\[([^\]]*)\]", spec):
        out[name] = tuple(d.strip() for d in dims.split(",") if d.strip())
    return out


def _domains(spec: str) -> dict:
    return dict(item.split(":") for item in spec.split())


def _case(kind, id, text, wrt, shapes, book, source, *, defs=(), domains="", future="",
          natural=None, sizes=None, layout="matrix", cookbook=None, note=""):
    wrt = tuple(w.strip() for w in wrt.split(","))
    book = (book,) if isinstance(book, str) else tuple(book)
    return Case(id=id, kind=kind, text=text, wrt=wrt, shapes=_shapes(shapes), book=book,
                source=source, defs=tuple(defs), domains=_domains(domains),
                future_domains=_domains(future), natural_text=natural, sizes=dict(sizes or {}),
                layout=layout, cookbook=cookbook, note=note)


def grad(*args, **kwargs) -> Case:
    return _case("grad", *args, **kwargs)


def jacobian(*args, **kwargs) -> Case:
    return _case("jacobian", *args, **kwargs)


def hessian(*args, **kwargs) -> Case:
    return _case("hessian", *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# The Matrix Cookbook, section 2: every identity of tests/cookbook/identities.py, then more
# ---------------------------------------------------------------------------------------------

#: the shapes and domains of tests/cookbook/identities.py: square non-symmetric matrices,
#: X invertible, W symmetric positive definite
CB = "A[n,n] B[n,n] C[n,n] D[n,n] X[n,n] W[n,n] a[n] b[n] c[n] d[n] s[n] x[n]"
CBD = "X:invertible W:spd"


def cb(label, text, wrt, book, **kwargs) -> Case:
    """A Cookbook identity of tests/cookbook/identities.py (``label`` as it is there)."""
    number = label.split()[0]
    slug = re.sub(r"[^0-9A-Za-z]+", "-", label).strip("-")
    kwargs.setdefault("domains", CBD)
    return grad(f"cookbook-{slug}", text, wrt, CB, book,
                f"Matrix Cookbook (2012), eq. ({number})", cookbook=label, **kwargs)


COOKBOOK = [
    # 2.1 determinants
    cb("49", "det(X)", "X", "det(X) * inv(X).T"),
    cb("51", "det(A @ X @ B)", "X", "det(A @ X @ B) * inv(X).T"),
    cb("52", "det(X.T @ A @ X)", "X", "2 * det(X.T @ A @ X) * inv(X).T"),
    cb("55", "logdet(X.T @ X)", "X", "2 * inv(X).T",
       note="the book prints 2 (X⁺)ᵀ; X is square and invertible here, so X⁺ = X⁻¹"),
    cb("57", "logdet(X)", "X", "inv(X).T"),
    cb("58 (k=2)", "det(X @ X)", "X", "2 * det(X @ X) * inv(X).T"),
    cb("58 (k=3)", "det(X @ X @ X)", "X", "3 * det(X @ X @ X) * inv(X).T"),
    # 2.2 inverses
    cb("60 (VJP)", "inv(X)", "X", "-inv(X).T @ G @ inv(X).T",
       note="the book's dX⁻¹ = -X⁻¹ dX X⁻¹ as a vector-Jacobian product"),
    cb("61", "a.T @ inv(X) @ b", "X", "-inv(X).T @ a @ b.T @ inv(X).T"),
    cb("62", "det(inv(X))", "X", "-det(inv(X)) * inv(X).T"),
    cb("63", "trace(A @ inv(X) @ B)", "X", "-(inv(X) @ B @ A @ inv(X)).T"),
    cb("64", "trace(inv(X + A))", "X", "-(inv(X + A) @ inv(X + A)).T"),
    # 2.4.1 first order
    cb("69 (x.T a)", "x.T @ a", "x", "a"),
    cb("69 (a.T x)", "a.T @ x", "x", "a"),
    cb("70", "a.T @ X @ b", "X", "a @ b.T"),
    cb("71", "a.T @ X.T @ b", "X", "b @ a.T"),
    cb("72 (a.T X a)", "a.T @ X @ a", "X", "a @ a.T"),
    cb("72 (a.T X.T a)", "a.T @ X.T @ a", "X", "a @ a.T"),
    cb("74 (VJP)", "X @ A", "X", "G @ A.T",
       note="the book's entrywise (J^mn A)_ij as a vector-Jacobian product"),
    cb("75 (VJP)", "X.T @ A", "X", "A @ G.T",
       note="the book's entrywise (J^nm A)_ij as a vector-Jacobian product"),
    # 2.4.2 second order
    cb("77", "b.T @ X.T @ X @ c", "X", "X @ (b @ c.T + c @ b.T)"),
    cb("78", "(B @ x + b).T @ C @ (D @ x + d)", "x",
       "B.T @ C @ (D @ x + d) + D.T @ C.T @ (B @ x + b)"),
    cb("80 (VJP)", "X.T @ B @ X", "X", "B @ X @ G.T + B.T @ X @ G",
       note="the book's X^T B J^ij + J^ji B X as a vector-Jacobian product"),
    cb("81", "x.T @ B @ x", "x", "(B + B.T) @ x"),
    cb("82", "b.T @ X.T @ D @ X @ c", "X", "D.T @ X @ b @ c.T + D @ X @ c @ b.T"),
    cb("83", "(X @ b + c).T @ D @ (X @ b + c)", "X", "(D + D.T) @ (X @ b + c) @ b.T"),
    cb("84", "(x - A @ s).T @ W @ (x - A @ s)", "s", "-2 * A.T @ W @ (x - A @ s)",
       future="W:symmetric"),
    cb("85", "(x - s).T @ W @ (x - s)", "x", "2 * W @ (x - s)", future="W:symmetric"),
    cb("86", "(x - s).T @ W @ (x - s)", "s", "-2 * W @ (x - s)", future="W:symmetric"),
    cb("87", "(x - A @ s).T @ W @ (x - A @ s)", "x", "2 * W @ (x - A @ s)",
       future="W:symmetric"),
    cb("88", "(x - A @ s).T @ W @ (x - A @ s)", "A", "-2 * W @ (x - A @ s) @ s.T",
       future="W:symmetric"),
    # 2.4.3 higher order
    cb("90 (n=2, VJP)", "X @ X", "X", "G @ X.T + X.T @ G",
       note="the book's sum over r of X^r J X^(n-1-r) as a vector-Jacobian product"),
    cb("91 (n=2)", "a.T @ X @ X @ b", "X", "a @ b.T @ X.T + X.T @ a @ b.T"),
    cb("91 (n=3)", "a.T @ X @ X @ X @ b", "X",
       "a @ b.T @ (X @ X).T + X.T @ a @ b.T @ X.T + (X @ X).T @ a @ b.T"),
    # 2.5.1 traces, first order
    cb("99", "trace(X)", "X", "eye(n)"),
    cb("100", "trace(X @ A)", "X", "A.T"),
    cb("101", "trace(A @ X @ B)", "X", "A.T @ B.T"),
    cb("102", "trace(A @ X.T @ B)", "X", "B @ A"),
    cb("103", "trace(X.T @ A)", "X", "A"),
    cb("104", "trace(A @ X.T)", "X", "A"),
    # 2.5.2 traces, second order
    cb("106", "trace(X @ X)", "X", "2 * X.T"),
    cb("107", "trace(X @ X @ B)", "X", "(X @ B + B @ X).T"),
    cb("108", "trace(X.T @ B @ X)", "X", "B @ X + B.T @ X"),
    cb("109", "trace(B @ X @ X.T)", "X", "B @ X + B.T @ X"),
    cb("110", "trace(X @ X.T @ B)", "X", "B @ X + B.T @ X"),
    cb("111", "trace(X @ B @ X.T)", "X", "X @ B.T + X @ B"),
    cb("112", "trace(B @ X.T @ X)", "X", "X @ B.T + X @ B"),
    cb("113", "trace(X.T @ X @ B)", "X", "X @ B.T + X @ B"),
    cb("114", "trace(A @ X @ B @ X)", "X", "A.T @ X.T @ B.T + B.T @ X.T @ A.T"),
    cb("115 (X.T X)", "trace(X.T @ X)", "X", "2 * X"),
    cb("115 (X X.T)", "trace(X @ X.T)", "X", "2 * X"),
    cb("116", "trace(B.T @ X.T @ C @ X @ B)", "X", "C.T @ X @ B @ B.T + C @ X @ B @ B.T"),
    cb("117", "trace(X.T @ B @ X @ C)", "X", "B @ X @ C + B.T @ X @ C.T"),
    cb("118", "trace(A @ X @ B @ X.T @ C)", "X", "A.T @ C.T @ X @ B.T + C @ A @ X @ B"),
    cb("119", "trace((A @ X @ B + C) @ (A @ X @ B + C).T)", "X",
       "2 * A.T @ (A @ X @ B + C) @ B.T"),
    # 2.5.3 traces, higher order
    cb("121 (k=3)", "trace(X @ X @ X)", "X", "3 * (X @ X).T"),
    cb("121 (k=4)", "trace(X @ X @ X @ X)", "X", "4 * (X @ X @ X).T"),
    cb("122 (k=2)", "trace(A @ X @ X)", "X", "(A @ X + X @ A).T"),
    cb("122 (k=3)", "trace(A @ X @ X @ X)", "X", "(A @ X @ X + X @ A @ X + X @ X @ A).T"),
    # 2.5.4 other
    cb("124", "trace(A @ inv(X) @ B)", "X", "-(inv(X) @ B @ A @ inv(X)).T"),
    # 2.6, 2.7 norms
    cb("129", "norm(x - a)", "x", "(x - a) / norm(x - a)"),
    cb("131", "norm(x) ** 2", "x", "2 * x"),
    cb("132", "norm(X) ** 2", "X", "2 * X"),
]

# Tall X (n > k) for the identities the book states for a non-square X.
TALL = "X[n,k] A[n,n] B[n,n] C[n,n]"
TALL_SIZES = {"n": 5, "k": 3}

COOKBOOK_MORE = [
    grad("cookbook-53", "det(X.T @ A @ X)", "X", TALL,
         "2 * det(X.T @ A @ X) * A @ X @ inv(X.T @ A @ X)",
         "Matrix Cookbook (2012), eq. (53): X not square, A symmetric",
         domains="A:spd", future="A:symmetric", sizes=TALL_SIZES),
    grad("cookbook-54", "det(X.T @ A @ X)", "X", TALL,
         "det(X.T @ A @ X) * (A @ X @ inv(X.T @ A @ X) + A.T @ X @ inv(X.T @ A.T @ X))",
         "Matrix Cookbook (2012), eq. (54): X not square", sizes=TALL_SIZES),
    grad("cookbook-55-tall", "logdet(X.T @ X)", "X", TALL, "2 * X @ inv(X.T @ X)",
         "Matrix Cookbook (2012), eq. (55): X not square", sizes=TALL_SIZES,
         note="the book prints 2 (X⁺)ᵀ; the pseudo-inverse is not in the syntax, so (X⁺)ᵀ is "
              "written X (XᵀX)⁻¹"),
    grad("cookbook-105", "trace(A) * trace(X)", "X", CB, "trace(A) * eye(n)",
         "Matrix Cookbook (2012), eq. (105): Tr(A ⊗ X) = Tr(A) Tr(X)",
         natural="trace(kron(A, X))"),
    grad("cookbook-120", "trace(X) ** 2", "X", CB, "2 * trace(X) * eye(n)",
         "Matrix Cookbook (2012), eq. (120): Tr(X ⊗ X) = Tr(X)²",
         natural="trace(kron(X, X))"),
    grad("cookbook-123", "trace(B.T @ X.T @ C @ X @ X.T @ C @ X @ B)", "X", CB,
         "C @ X @ X.T @ C @ X @ B @ B.T + C.T @ X @ B @ B.T @ X.T @ C.T @ X"
         " + C @ X @ B @ B.T @ X.T @ C @ X + C.T @ X @ X.T @ C.T @ X @ B @ B.T",
         "Matrix Cookbook (2012), eq. (123)"),
    grad("cookbook-125", "trace(inv(X.T @ C @ X) @ A)", "X", "X[n,k] A[k,k] C[n,n]",
         "-(C @ X @ inv(X.T @ C @ X)) @ (A + A.T) @ inv(X.T @ C @ X)",
         "Matrix Cookbook (2012), eq. (125): C symmetric",
         domains="C:spd", future="C:symmetric", sizes=TALL_SIZES),
    grad("cookbook-126", "trace(inv(X.T @ C @ X) @ (X.T @ B @ X))", "X", TALL,
         "-2 * C @ X @ inv(X.T @ C @ X) @ X.T @ B @ X @ inv(X.T @ C @ X)"
         " + 2 * B @ X @ inv(X.T @ C @ X)",
         "Matrix Cookbook (2012), eq. (126): B and C symmetric",
         domains="B:spd C:spd", future="B:symmetric C:symmetric", sizes=TALL_SIZES),
    grad("cookbook-127", "trace(inv(A + X.T @ C @ X) @ (X.T @ B @ X))", "X",
         "X[n,k] A[k,k] B[n,n] C[n,n]",
         "-2 * C @ X @ inv(A + X.T @ C @ X) @ X.T @ B @ X @ inv(A + X.T @ C @ X)"
         " + 2 * B @ X @ inv(A + X.T @ C @ X)",
         "Matrix Cookbook (2012), eq. (127): B and C symmetric",
         domains="A:spd B:spd C:spd", future="A:symmetric B:symmetric C:symmetric",
         sizes=TALL_SIZES,
         note="the book's form also needs A symmetric (it writes (A + XᵀCX)⁻¹ for its "
              "transpose)"),
    jacobian("cookbook-130-jacobian", "(x - a) / norm(x - a)", "x", CB,
             "eye(n) / norm(x - a) - (x - a) @ (x - a).T / norm(x - a) ** 3",
             "Matrix Cookbook (2012), eq. (130)"),
    hessian("cookbook-130-hessian", "norm(x - a)", "x", CB,
            "eye(n) / norm(x - a) - (x - a) @ (x - a).T / norm(x - a) ** 3",
            "Matrix Cookbook (2012), eq. (130), the derivative of (129)"),
    grad("cookbook-2.4.4-gradient", "x.T @ A @ x + b.T @ x", "x", CB, "(A + A.T) @ x + b",
         "Matrix Cookbook (2012), §2.4.4 (gradient and Hessian)"),
    hessian("cookbook-2.4.4-hessian", "x.T @ A @ x + b.T @ x", "x", CB, "A + A.T",
            "Matrix Cookbook (2012), §2.4.4 (gradient and Hessian)"),
    jacobian("cookbook-vec-AXB", "A @ X @ B", "X", "A[p,n] X[n,q] B[q,r]", "kron(B.T, A)",
             "Matrix Cookbook (2012), §10.2.2: vec(AXB) = (Bᵀ ⊗ A) vec(X)", layout="vec"),
    hessian("cookbook-vec-hessian-trace", "trace(X.T @ A @ X)", "X", "X[n,k] A[n,n]",
            "kron(eye(k), A + A.T)",
            "Matrix Cookbook (2012), eq. (108) differentiated again, in the vec layout of "
            "§10.2.2", layout="vec"),
]


# ---------------------------------------------------------------------------------------------
# Regression and regularisation
# ---------------------------------------------------------------------------------------------

REG = "X[m,d] w[d] y[m] lam[] lam1[] lam2[] delta[]"
REGD = "lam:positive lam1:positive lam2:positive delta:positive"
ESL = "Hastie, Tibshirani & Friedman, The Elements of Statistical Learning (2nd ed., 2009)"
DLB = "Goodfellow, Bengio & Courville, Deep Learning (2016)"
PRML = "Bishop, Pattern Recognition and Machine Learning (2006)"
BV = "Boyd & Vandenberghe, Convex Optimization (2004)"


def reg(kind, id, text, wrt, book, source, **kwargs) -> Case:
    kwargs.setdefault("domains", REGD)
    return _case(kind, id, text, wrt, REG, book, source, **kwargs)


REGRESSION = [
    reg("grad", "least-squares", "sum((y - X @ w) ** 2)", "w", "-2 * X.T @ (y - X @ w)",
        f"{ESL}, eq. (3.4)"),
    reg("hessian", "least-squares-hessian", "sum((y - X @ w) ** 2)", "w", "2 * X.T @ X",
        f"{ESL}, eq. (3.4)"),
    reg("grad", "mse", "mean((X @ w - y) ** 2)", "w", "(2/m) * X.T @ (X @ w - y)",
        f"{DLB}, §5.1.4 (linear regression)"),
    reg("hessian", "mse-hessian", "sum((X @ w - y) ** 2) / m", "w", "(2/m) * X.T @ X",
        f"{DLB}, §5.1.4 (linear regression)"),
    reg("grad", "ridge", "sum((y - X @ w) ** 2) + lam * sum(w ** 2)", "w",
        "-2 * X.T @ (y - X @ w) + 2 * lam * w", f"{ESL}, eqs. (3.43)-(3.44)",
        natural="(y - X @ w) @ (y - X @ w) + lam * w @ w"),
    reg("grad", "ridge-norms", "norm(y - X @ w) ** 2 + lam * norm(w) ** 2", "w",
        "-2 * X.T @ (y - X @ w) + 2 * lam * w", f"{ESL}, eqs. (3.43)-(3.44)"),
    reg("hessian", "ridge-hessian", "sum((y - X @ w) ** 2) + lam * sum(w ** 2)", "w",
        "2 * (X.T @ X + lam * eye(d))", f"{ESL}, eqs. (3.43)-(3.44)"),
    reg("grad", "lasso", "sum((y - X @ w) ** 2) / 2 + lam * norm1(w)", "w",
        "-X.T @ (y - X @ w) + lam * sign(w)",
        f"{ESL}, eq. (3.52); the subgradient sign(w) away from w = 0"),
    reg("grad", "lasso-abs", "sum((y - X @ w) ** 2) / 2 + lam * sum(abs(w))", "w",
        "-X.T @ (y - X @ w) + lam * sign(w)",
        f"{ESL}, eq. (3.52); the subgradient sign(w) away from w = 0"),
    reg("grad", "elastic-net", "sum((y - X @ w) ** 2) + lam1 * norm1(w) + lam2 * sum(w ** 2)",
        "w", "-2 * X.T @ (y - X @ w) + lam1 * sign(w) + 2 * lam2 * w",
        "Zou & Hastie, Regularization and variable selection via the elastic net (JRSS-B, "
        "2005), the naive elastic-net criterion"),
    grad("weight-decay", "lam / 2 * sum(W ** 2)", "W", "W[h,d] lam[]", "lam * W",
         f"{DLB}, §7.1.1 (L2 parameter regularisation)", domains="lam:positive"),
    grad("l1-penalty", "lam * norm1(W)", "W", "W[h,d] lam[]", "lam * sign(W)",
         f"{DLB}, §7.1.2 (L1 regularisation)", domains="lam:positive"),
    grad("weighted-least-squares", "(y - X @ w).T @ Om @ (y - X @ w)", "w",
         "X[m,d] w[d] y[m] Om[m,m]", "-2 * X.T @ Om @ (y - X @ w)",
         "Matrix Cookbook (2012), eq. (84), with the weight matrix symmetric",
         domains="Om:spd", future="Om:symmetric"),
    grad("tikhonov", "norm(A @ x - b) ** 2 + lam * norm(L @ x) ** 2", "x",
         "A[m,n] x[n] b[m] L[p,n] lam[]", "2 * A.T @ (A @ x - b) + 2 * lam * L.T @ L @ x",
         "Tikhonov regularisation: the normal equations (AᵀA + λLᵀL) x = Aᵀb (Hansen, "
         "Rank-Deficient and Discrete Ill-Posed Problems, 1998, ch. 5)",
         domains="lam:positive"),
    reg("grad", "poisson-regression", "sum(exp(X @ w) - y * (X @ w))", "w",
        "X.T @ (exp(X @ w) - y)",
        "McCullagh & Nelder, Generalized Linear Models (2nd ed., 1989): the score "
        "Xᵀ(μ - y) of a canonical-link GLM, here log-linear Poisson"),
    reg("hessian", "poisson-regression-hessian", "sum(exp(X @ w) - y * (X @ w))", "w",
        "X.T @ diag(exp(X @ w)) @ X",
        "McCullagh & Nelder, Generalized Linear Models (2nd ed., 1989): the information "
        "XᵀWX of a canonical-link GLM, W = diag(μ)"),
    reg("grad", "pseudo-huber", "sum(delta ** 2 * (sqrt(1 + ((X @ w - y) / delta) ** 2) - 1))",
        "w", "X.T @ ((X @ w - y) / sqrt(1 + ((X @ w - y) / delta) ** 2))",
        "Hartley & Zisserman, Multiple View Geometry (2nd ed., 2004), §A6.8 (pseudo-Huber "
        "cost)"),
    reg("grad", "huber",
        "sum(step(delta - abs(X @ w - y)) * (X @ w - y) ** 2 / 2"
        " + step(abs(X @ w - y) - delta) * delta * (abs(X @ w - y) - delta / 2))", "w",
        "X.T @ (step(delta - abs(r)) * r + step(abs(r) - delta) * delta * sign(r))",
        "Huber, Robust estimation of a location parameter (Ann. Math. Statist., 1964): "
        "ψ(r) = r for |r| ≤ δ, δ sign(r) beyond",
        defs=[("r", "X @ w - y")],
        natural="sum(where(abs(X @ w - y) <= delta, (X @ w - y) ** 2 / 2,"
                " delta * (abs(X @ w - y) - delta / 2)))",
        note="the book's ψ is clip(r, -δ, δ), not in the syntax either"),
    grad("log-barrier", "-sum(log(b + A @ x))", "x", "A[m,n] x[n] b[m]", "-A.T @ d",
         f"{BV}, §11.2.1 (logarithmic barrier), with b + Ax for b - Ax",
         defs=[("d", "1 / (b + A @ x)")], domains="A:positive x:positive b:positive",
         note="b + Ax with positive A, x, b keeps the logarithm defined at random inputs"),
    hessian("log-barrier-hessian", "-sum(log(b + A @ x))", "x", "A[m,n] x[n] b[m]",
            "A.T @ diag(d ** 2) @ A",
            f"{BV}, §11.2.1 (logarithmic barrier), with b + Ax for b - Ax",
            defs=[("d", "1 / (b + A @ x)")], domains="A:positive x:positive b:positive"),
    grad("quadratic-model", "x.T @ A @ x / 2 - b.T @ x", "x", "A[n,n] x[n] b[n]", "A @ x - b",
         "Nocedal & Wright, Numerical Optimization (2nd ed., 2006), eqs. (5.2)-(5.3)",
         domains="A:spd", future="A:symmetric"),
    hessian("quadratic-model-hessian", "x.T @ A @ x / 2 - b.T @ x", "x", "A[n,n] x[n] b[n]",
            "A", "Nocedal & Wright, Numerical Optimization (2nd ed., 2006), eq. (5.2)",
            domains="A:spd", future="A:symmetric"),
]


# ---------------------------------------------------------------------------------------------
# Classification losses
# ---------------------------------------------------------------------------------------------

CLS = "X[m,d] w[d] y[m] lam[]"


def cls(kind, id, text, wrt, book, source, **kwargs) -> Case:
    kwargs.setdefault("domains", "lam:positive")
    return _case(kind, id, text, wrt, CLS, book, source, **kwargs)


SIG = [("s", "sigmoid(X @ w)")]

CLASSIFICATION = [
    cls("grad", "logistic-softplus", "sum(softplus(X @ w) - y * (X @ w))", "w",
        "X.T @ (sigmoid(X @ w) - y)", f"{PRML}, eq. (4.91)", future="y:binary"),
    cls("grad", "binary-cross-entropy",
        "-sum(y * log(sigmoid(X @ w)) + (1 - y) * log(1 - sigmoid(X @ w)))", "w",
        "X.T @ (sigmoid(X @ w) - y)", f"{PRML}, eqs. (4.90)-(4.91)", future="y:binary"),
    cls("grad", "logistic-mean", "(sum(softplus(X @ w)) - y.T @ X @ w) / m", "w",
        "(1/m) * X.T @ (sigmoid(X @ w) - y)", f"{PRML}, eq. (4.91), averaged",
        future="y:binary"),
    cls("grad", "logistic-l2", "sum(softplus(X @ w) - y * (X @ w)) + lam / 2 * sum(w ** 2)",
        "w", "X.T @ (sigmoid(X @ w) - y) + lam * w",
        f"{PRML}, eq. (4.91), with the weight decay of {DLB}, §7.1.1", future="y:binary"),
    cls("grad", "logistic-signed-labels", "sum(softplus(-y * (X @ w)))", "w",
        "-X.T @ (y * sigmoid(-y * (X @ w)))",
        "Shalev-Shwartz & Ben-David, Understanding Machine Learning (2014), §9.3: the loss "
        f"log(1 + exp(-y wᵀx)), y in {{-1, +1}}; dζ/dx = σ(x) ({DLB}, §3.10)",
        future="y:sign"),
    cls("hessian", "logistic-hessian", "sum(softplus(X @ w) - y * (X @ w))", "w",
        "X.T @ diag(s * (1 - s)) @ X", f"{PRML}, eqs. (4.97)-(4.98)", defs=SIG,
        future="y:binary"),
    cls("hessian", "binary-cross-entropy-hessian",
        "-sum(y * log(sigmoid(X @ w)) + (1 - y) * log(1 - sigmoid(X @ w)))", "w",
        "X.T @ diag(s * (1 - s)) @ X", f"{PRML}, eqs. (4.97)-(4.98)", defs=SIG,
        future="y:binary"),
    cls("hessian", "logistic-l2-hessian",
        "sum(softplus(X @ w) - y * (X @ w)) + lam / 2 * sum(w ** 2)", "w",
        "X.T @ diag(s * (1 - s)) @ X + lam * eye(d)",
        f"{PRML}, eqs. (4.97)-(4.98), with weight decay", defs=SIG, future="y:binary"),
    grad("log-sigmoid", "sum(log(sigmoid(z)))", "z", "z[n]", "sigmoid(-z)",
         f"{DLB}, §3.10: log σ(x) = -ζ(-x), dζ/dx = σ(x)"),
    cls("grad", "log-sigmoid-linear", "sum(log(sigmoid(X @ w)))", "w",
        "X.T @ (1 - sigmoid(X @ w))", f"{DLB}, §3.10: d/dx log σ(x) = 1 - σ(x)"),
    grad("softplus", "sum(softplus(z))", "z", "z[n]", "sigmoid(z)",
         f"{DLB}, §3.10: dζ/dx = σ(x)"),
    cls("grad", "softplus-spelled-out", "sum(log(1 + exp(X @ w)))", "w",
        "X.T @ sigmoid(X @ w)", f"{DLB}, §3.10: ζ(x) = log(1 + exp(x)), dζ/dx = σ(x)"),
    grad("softmax-cross-entropy", "-sum(y * log(softmax(z)))", "z", "z[c] y[c]",
         "softmax(z) - y", f"{PRML}, eq. (4.109), for one example", domains="y:probability"),
    grad("softmax-cross-entropy-spelled-out", "-sum(y * log(exp(z) / sum(exp(z))))", "z",
         "z[c] y[c]", "softmax(z) - y", f"{PRML}, eqs. (4.104) and (4.109)",
         domains="y:probability"),
    grad("softmax-cross-entropy-logsumexp", "logsumexp(z) - y.T @ z", "z", "z[c] y[c]",
         "softmax(z) - y", f"{DLB}, §6.2.2.3 (log softmax(z)_i = z_i - log Σ_j exp(z_j))",
         domains="y:probability"),
    grad("softmax-cross-entropy-batch",
         "-sum(Y * log(softmax(W @ X + b, axis=0))) / m", "W, b", "W[c,d] X[d,m] b[c] Y[c,m]",
         ["(P - Y) @ X.T / m", "sum(P - Y, axis=1) / m"], f"{PRML}, eq. (4.109), averaged",
         defs=[("P", "softmax(W @ X + b, axis=0)")], domains="Y:probability"),
    grad("softmax-cross-entropy-row-major",
         "-sum(Y * log(softmax(X @ W + b.T, axis=1))) / m", "W, b", "X[m,d] W[d,c] b[c] Y[m,c]",
         ["X.T @ (P - Y) / m", "sum(P - Y, axis=0) / m"],
         f"{PRML}, eq. (4.109), averaged, one example per row (as NumPy code stores a batch)",
         defs=[("P", "softmax(X @ W + b.T, axis=1)")], domains="Y:probability_rows"),
    hessian("softmax-cross-entropy-hessian", "-sum(y * log(softmax(z)))", "z", "z[c] y[c]",
            "diag(p) - p @ p.T", f"{PRML}, eq. (4.110), for one example with φ = 1",
            defs=[("p", "softmax(z)")], domains="y:probability"),
    grad("label-smoothing", "-sum((0.9 * y + 0.1 / c) * log(softmax(z)))", "z", "z[c] y[c]",
         "softmax(z) - (0.9 * y + 0.1 / c)",
         "Szegedy et al., Rethinking the Inception architecture (CVPR 2016), §7 "
         "(label-smoothing regularisation, ε = 0.1)", domains="y:probability"),
    grad("distillation", "-sum(softmax(t / tau) * log(softmax(z / tau)))", "z",
         "z[c] t[c] tau[]", "(softmax(z / tau) - softmax(t / tau)) / tau",
         "Hinton, Vinyals & Dean, Distilling the knowledge in a neural network (2015), eq. (2)",
         domains="tau:positive", note="the paper's temperature T is tau: T is the transpose"),
    grad("focal-loss", "-sum((1 - sigmoid(y * z)) ** 2 * log(sigmoid(y * z)))", "z",
         "z[n] y[n] gamma[]", "y * (1 - pt) ** 2 * (2 * pt * log(pt) + pt - 1)",
         "Lin et al., Focal loss for dense object detection (ICCV 2017), appendix B "
         "(dFL/dx with γ = 2, y in {-1, +1})",
         defs=[("pt", "sigmoid(y * z)")], domains="gamma:positive", future="y:sign",
         natural="-sum((1 - sigmoid(y * z)) ** gamma * log(sigmoid(y * z)))"),
    grad("hinge-pegasos", "lam / 2 * sum(w ** 2) + sum(relu(1 - y * (X @ w))) / m", "w", CLS,
         "lam * w - X.T @ (y * step(1 - y * (X @ w))) / m",
         "Shalev-Shwartz, Singer, Srebro & Cotter, Pegasos (Math. Programming, 2011), eq. (1) "
         "and its subgradient (§2)", domains="lam:positive", future="y:sign",
         natural="lam / 2 * sum(w ** 2) + sum(maximum(0, 1 - y * (X @ w))) / m"),
    grad("squared-hinge", "sum(relu(1 - y * (X @ w)) ** 2)", "w", CLS,
         "-2 * X.T @ (y * relu(1 - y * (X @ w)))",
         "Chang, Hsieh & Lin, Coordinate descent method for large-scale L2-loss linear SVM "
         "(JMLR, 2008)", future="y:sign",
         natural="sum(maximum(0, 1 - y * (X @ w)) ** 2)"),
    grad("infonce", "-trace(log(softmax(Z1 @ Z2.T / tau, axis=1))) / n", "Z1, Z2",
         "Z1[n,k] Z2[n,k] tau[]",
         ["(P - eye(n)) @ Z2 / (n * tau)", "(P - eye(n)).T @ Z1 / (n * tau)"],
         "van den Oord, Li & Vinyals, Representation learning with contrastive predictive "
         "coding (2018), eq. (4); the gradient of a softmax cross-entropy with the identity as "
         "targets (Chen et al., SimCLR, ICML 2020)",
         defs=[("P", "softmax(Z1 @ Z2.T / tau, axis=1)")], domains="tau:positive",
         natural="-mean(diag(log_softmax(Z1 @ Z2.T / tau, axis=1)))"),
    grad("triplet-loss", "relu(norm(a - p) ** 2 - norm(a - q) ** 2 + alpha)", "a, p, q",
         "a[k] p[k] q[k] alpha[]", ["2 * on * (q - p)", "2 * on * (p - a)", "2 * on * (a - q)"],
         "Schroff, Kalenichenko & Philbin, FaceNet (CVPR 2015), eq. (3); gradients by Matrix "
         "Cookbook (131)",
         defs=[("on", "step(norm(a - p) ** 2 - norm(a - q) ** 2 + alpha)")],
         domains="alpha:positive",
         natural="maximum(0, norm(a - p) ** 2 - norm(a - q) ** 2 + alpha)"),
    grad("negative-sampling", "-log(sigmoid(u.T @ v)) - sum(log(sigmoid(-(N @ v))))", "v, u",
         "u[k] v[k] N[s,k]",
         ["(sigmoid(u.T @ v) - 1) * u + N.T @ sigmoid(N @ v)", "(sigmoid(u.T @ v) - 1) * v"],
         "Mikolov et al., Distributed representations of words and phrases (NIPS 2013), "
         "eq. (4); gradients as in Rong, word2vec parameter learning explained (2014), §3.2"),
    grad("entropy", "-sum(p * log(p))", "p", "p[n]", "-(log(p) + 1)",
         "Cover & Thomas, Elements of Information Theory (2nd ed., 2006), eq. (2.1), "
         "differentiated", domains="p:positive"),
    hessian("negative-entropy-hessian", "sum(p * log(p))", "p", "p[n]", "diag(1 / p)",
            f"{BV}, §3.1.5 (negative entropy)", domains="p:positive"),
]


# ---------------------------------------------------------------------------------------------
# Layers and cells (vector-Jacobian products with the upstream gradient G)
# ---------------------------------------------------------------------------------------------

ALG64 = f"{DLB}, algorithm 6.4 (backward computation of a layer)"
FLASH = ("Dao et al., FlashAttention (NeurIPS 2022), appendix B.2 (standard attention backward "
         "pass), for the attention of Vaswani et al. (2017), eq. (1)")
ATT = "Q[t,k] K[s,k] V[s,v]"
ATT_DEFS = [("P", "softmax(Q @ K.T / sqrt(k), axis=1)"), ("dP", "G @ V.T"),
            ("dS", "P * (dP - sum(P * dP, axis=1, keepdims=True))")]
LN_DEFS = [("mu", "mean(x)"), ("sigma", "sqrt(mean((x - mu) ** 2) + eps)"),
           ("xhat", "(x - mu) / sigma"), ("dxhat", "G * g")]
BN_DEFS = [("mu", "mean(X, axis=0)"), ("sigma", "sqrt(mean((X - mu.T) ** 2, axis=0) + eps)"),
           ("Xhat", "(X - mu.T) / sigma.T"), ("dXhat", "G * g.T")]
GRU = "x[d] h[n] Wz[n,d] Uz[n,n] Wr[n,d] Ur[n,n] Wc[n,d] Uc[n,n]"
GRU_TEXT = ("sigmoid(Wz @ x + Uz @ h) * h + (1 - sigmoid(Wz @ x + Uz @ h))"
            " * tanh(Wc @ x + Uc @ (sigmoid(Wr @ x + Ur @ h) * h))")
GRU_DEFS = [("z", "sigmoid(Wz @ x + Uz @ h)"), ("r", "sigmoid(Wr @ x + Ur @ h)"),
            ("c", "tanh(Wc @ x + Uc @ (r * h))"), ("dc", "G * (1 - z) * (1 - c ** 2)"),
            ("dz", "G * (h - c) * z * (1 - z)"), ("dr", "(Uc.T @ dc) * h * r * (1 - r)")]
GRU_SOURCE = ("Cho et al., Learning phrase representations using RNN encoder-decoder (EMNLP "
              "2014), eqs. (5)-(8); backward by the chain rule in the δ notation of Greff et al. "
              "(2017)")
LSTM = ("x[d] h[n] c[n] Wz[n,d] Wi[n,d] Wf[n,d] Wo[n,d] Rz[n,n] Ri[n,n] Rf[n,n] Ro[n,n] "
        "bz[n] bi[n] bf[n] bo[n]")
LSTM_TEXT = ("sigmoid(Wo @ x + Ro @ h + bo) * tanh(sigmoid(Wf @ x + Rf @ h + bf) * c"
             " + sigmoid(Wi @ x + Ri @ h + bi) * tanh(Wz @ x + Rz @ h + bz))")
LSTM_DEFS = [("z", "tanh(Wz @ x + Rz @ h + bz)"), ("i", "sigmoid(Wi @ x + Ri @ h + bi)"),
             ("f", "sigmoid(Wf @ x + Rf @ h + bf)"), ("o", "sigmoid(Wo @ x + Ro @ h + bo)"),
             ("cn", "z * i + c * f"), ("dc", "G * o * (1 - tanh(cn) ** 2)"),
             ("do", "G * tanh(cn) * o * (1 - o)"), ("di", "dc * z * i * (1 - i)"),
             ("df", "dc * c * f * (1 - f)"), ("dz", "dc * i * (1 - z ** 2)")]
LSTM_SOURCE = ("Greff et al., LSTM: a search space odyssey (IEEE TNNLS, 2017), §II: the vanilla "
               "LSTM's forward pass and backpropagation deltas, without peepholes")

LAYERS = [
    grad("linear-layer", "W @ X + b", "W, X, b", "W[h,d] X[d,m] b[h]",
         ["G @ X.T", "W.T @ G", "sum(G, axis=1)"], ALG64),
    grad("linear-layer-rows", "X @ W + b.T", "X, W, b", "X[m,d] W[d,h] b[h]",
         ["G @ W.T", "X.T @ G", "sum(G, axis=0)"], f"{ALG64}, examples as rows"),
    grad("tanh-layer", "tanh(W @ X + b)", "W, b", "W[h,d] X[d,m] b[h]",
         ["D @ X.T", "sum(D, axis=1)"], ALG64,
         defs=[("H", "tanh(W @ X + b)"), ("D", "G * (1 - H ** 2)")]),
    grad("sigmoid-layer", "sigmoid(W @ X + b)", "W, X", "W[h,d] X[d,m] b[h]",
         ["D @ X.T", "W.T @ D"], ALG64,
         defs=[("S", "sigmoid(W @ X + b)"), ("D", "G * S * (1 - S)")]),
    grad("relu-layer", "relu(W @ X + b)", "W, b", "W[h,d] X[d,m] b[h]",
         ["D @ X.T", "sum(D, axis=1)"], ALG64, defs=[("D", "G * step(W @ X + b)")]),
    grad("tanh-layer-squared-loss", "sum((tanh(W @ X + b) - Y) ** 2) / m", "W, b",
         "W[n,d] X[d,m] b[n] Y[n,m]", ["(2/m) * D @ X.T", "(2/m) * sum(D, axis=1)"], ALG64,
         defs=[("H", "tanh(W @ X + b)"), ("D", "(H - Y) * (1 - H ** 2)")]),
    grad("mlp-tanh-mse", "sum((W2 @ tanh(W1 @ X + b1) + b2 - Y) ** 2) / (2 * m)",
         "W1, b1, W2, b2", "W1[h,d] b1[h] W2[c,h] b2[c] X[d,m] Y[c,m]",
         ["D1 @ X.T / m", "sum(D1, axis=1) / m", "R @ H.T / m", "sum(R, axis=1) / m"],
         f"{PRML}, eqs. (5.53)-(5.56) (backpropagation), over a batch",
         defs=[("H", "tanh(W1 @ X + b1)"), ("R", "W2 @ H + b2 - Y"),
               ("D1", "(W2.T @ R) * (1 - H ** 2)")]),
    grad("mlp-relu-softmax", "-sum(Y * log(softmax(W2 @ relu(W1 @ X + b1) + b2, axis=0))) / m",
         "W1, W2", "W1[h,d] b1[h] W2[c,h] b2[c] X[d,m] Y[c,m]",
         ["((W2.T @ D2) * step(W1 @ X + b1)) @ X.T", "D2 @ H.T"],
         f"{ALG64}, with the softmax output of {PRML}, eq. (4.109)",
         defs=[("H", "relu(W1 @ X + b1)"), ("D2", "(softmax(W2 @ H + b2, axis=0) - Y) / m")],
         domains="Y:probability"),
    grad("residual-block", "x + W2 @ relu(W1 @ x)", "x, W1, W2", "x[n] W1[h,n] W2[n,h]",
         ["G + W1.T @ D", "D @ x.T", "G @ relu(W1 @ x).T"],
         "He et al., Identity mappings in deep residual networks (ECCV 2016), eq. (5)",
         defs=[("D", "(W2.T @ G) * step(W1 @ x)")]),
    grad("attention-V", "softmax(Q @ K.T / sqrt(k), axis=1) @ V", "V", ATT, "P.T @ G", FLASH,
         defs=ATT_DEFS[:1]),
    grad("attention-Q", "softmax(Q @ K.T / sqrt(k), axis=1) @ V", "Q", ATT,
         "dS @ K / sqrt(k)", FLASH, defs=ATT_DEFS),
    grad("attention-K", "softmax(Q @ K.T / sqrt(k), axis=1) @ V", "K", ATT,
         "dS.T @ Q / sqrt(k)", FLASH, defs=ATT_DEFS),
    grad("attention-QKV", "softmax(Q @ K.T / sqrt(k), axis=1) @ V", "Q, K, V", ATT,
         ["dS @ K / sqrt(k)", "dS.T @ Q / sqrt(k)", "P.T @ G"], FLASH, defs=ATT_DEFS),
    grad("self-attention-projections", "softmax(X @ Wq @ (X @ Wk).T / sqrt(k), axis=1) @ X @ Wv",
         "Wq, Wk, Wv", "X[t,d] Wq[d,k] Wk[d,k] Wv[d,v]",
         ["X.T @ dS @ X @ Wk / sqrt(k)", "X.T @ dS.T @ X @ Wq / sqrt(k)", "X.T @ P.T @ G"],
         FLASH, defs=[("P", "softmax(X @ Wq @ (X @ Wk).T / sqrt(k), axis=1)"),
                      ("dP", "G @ (X @ Wv).T"), ("dS", "P * (dP - sum(P * dP, axis=1, keepdims=True))")]),
    grad("layer-norm", "g * (x - mean(x)) / sqrt(mean((x - mean(x)) ** 2) + eps) + b",
         "x, g, b", "x[n] g[n] b[n] eps[]",
         ["(dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sigma", "G * xhat", "G"],
         "Ba, Kiros & Hinton, Layer normalization (2016), §3; backward as Ioffe & Szegedy "
         "(2015), §3", defs=LN_DEFS, domains="eps:positive",
         natural="g * (x - mean(x)) / sqrt(var(x) + eps) + b"),
    grad("batch-norm",
         "g.T * (X - mean(X, axis=0).T) / sqrt(mean((X - mean(X, axis=0).T) ** 2, axis=0).T"
         " + eps) + b.T", "X, g, b", "X[m,d] g[d] b[d] eps[]",
         ["(dXhat - mean(dXhat, axis=0).T - Xhat * mean(dXhat * Xhat, axis=0).T) / sigma.T",
          "sum(G * Xhat, axis=0)", "sum(G, axis=0)"],
         "Ioffe & Szegedy, Batch normalization (ICML 2015), algorithm 1 and the gradients of "
         "§3", defs=BN_DEFS, domains="eps:positive",
         natural="g * (X - mean(X, axis=0)) / sqrt(var(X, axis=0) + eps) + b"),
    grad("rms-norm", "g * x / sqrt(mean(x ** 2) + eps)", "x, g", "x[n] g[n] eps[]",
         ["(dxhat - xhat * mean(dxhat * xhat)) / r", "G * xhat"],
         "Zhang & Sennrich, Root mean square layer normalization (NeurIPS 2019), §3; "
         "backward by the chain rule as for layer norm",
         defs=[("r", "sqrt(mean(x ** 2) + eps)"), ("xhat", "x / r"), ("dxhat", "G * g")],
         domains="eps:positive"),
    grad("gru-h", GRU_TEXT, "h", GRU, "G * z + Uz.T @ dz + r * (Uc.T @ dc) + Ur.T @ dr",
         GRU_SOURCE, defs=GRU_DEFS),
    grad("gru-weights", GRU_TEXT, "Wz, Wr, Wc", GRU, ["dz @ x.T", "dr @ x.T", "dc @ x.T"],
         GRU_SOURCE, defs=GRU_DEFS),
    grad("lstm-c-h", LSTM_TEXT, "c, h", LSTM,
         ["dc * f", "Rz.T @ dz + Ri.T @ di + Rf.T @ df + Ro.T @ do"], LSTM_SOURCE,
         defs=LSTM_DEFS),
    grad("lstm-weights", LSTM_TEXT, "Wz, Wi, Wf, Wo", LSTM,
         ["dz @ x.T", "di @ x.T", "df @ x.T", "do @ x.T"], LSTM_SOURCE, defs=LSTM_DEFS),
    grad("cosine-similarity", "a.T @ b / (norm(a) * norm(b))", "a", "a[n] b[n]",
         "(b / norm(b) - sim * a / norm(a)) / norm(a)",
         "the quotient rule with Matrix Cookbook (129)",
         defs=[("sim", "a.T @ b / (norm(a) * norm(b))")]),
    grad("cosine-similarity-both", "a.T @ b / (norm(a) * norm(b))", "a, b", "a[n] b[n]",
         ["(b / norm(b) - sim * a / norm(a)) / norm(a)",
          "(a / norm(a) - sim * b / norm(b)) / norm(b)"],
         "the quotient rule with Matrix Cookbook (129)",
         defs=[("sim", "a.T @ b / (norm(a) * norm(b))")]),
    grad("rayleigh-quotient", "x.T @ A @ x / (x.T @ x)", "x", "x[n] A[n,n]",
         "2 * (A @ x - r * x) / (x.T @ x)",
         "the Rayleigh quotient's gradient 2(Ax - r(x) x) / xᵀx (Parlett, The Symmetric "
         "Eigenvalue Problem, 1998)",
         defs=[("r", "x.T @ A @ x / (x.T @ x)")], domains="A:spd", future="A:symmetric"),
    grad("fisher-lda", "w.T @ Sb @ w / (w.T @ Sw @ w)", "w", "w[n] Sb[n,n] Sw[n,n]",
         "2 * (Sb @ w - J * Sw @ w) / (w.T @ Sw @ w)",
         f"{PRML}, eqs. (4.26) and (4.29) (Fisher's criterion)",
         defs=[("J", "w.T @ Sb @ w / (w.T @ Sw @ w)")], domains="Sb:spd Sw:spd",
         future="Sb:symmetric Sw:symmetric"),
    grad("nmf-frobenius", "norm(V - W @ H) ** 2 / 2", "W, H", "V[m,n] W[m,r] H[r,n]",
         ["W @ H @ H.T - V @ H.T", "W.T @ W @ H - W.T @ V"],
         "Lee & Seung, Algorithms for non-negative matrix factorization (NIPS 2000), §4 "
         "(the gradient split into the parts of the multiplicative update)",
         domains="V:positive W:positive H:positive"),
    grad("nmf-kl", "sum(V * log(V / (W @ H)) - V + W @ H)", "W, H", "V[m,n] W[m,r] H[r,n]",
         ["(1 - V / (W @ H)) @ H.T", "W.T @ (1 - V / (W @ H))"],
         "Lee & Seung, Algorithms for non-negative matrix factorization (NIPS 2000), eq. (3) "
         "and §4", domains="V:positive W:positive H:positive"),
    grad("matrix-factorisation", "norm(M - U @ V.T) ** 2", "U, V", "M[m,k] U[m,r] V[k,r]",
         ["-2 * (M - U @ V.T) @ V", "-2 * (M - U @ V.T).T @ U"],
         "Matrix Cookbook (2012), eq. (119) (with A = -I, B = V.T, C = M) and its transpose"),
    grad("masked-matrix-factorisation", "sum(Mk * (R - U @ V.T) ** 2)", "U, V",
         "R[m,k] Mk[m,k] U[m,r] V[k,r]",
         ["-2 * (Mk * (R - U @ V.T)) @ V", "-2 * (Mk * (R - U @ V.T)).T @ U"],
         "Koren, Bell & Volinsky, Matrix factorization techniques for recommender systems "
         "(IEEE Computer, 2009), eq. (2) and its gradient steps", future="Mk:binary"),
]


# ---------------------------------------------------------------------------------------------
# Gaussians, log-determinants, traces and quadratic forms
# ---------------------------------------------------------------------------------------------

GAUSSIAN = [
    grad("gaussian-nll", "(x - mu).T @ inv(S) @ (x - mu) / 2 + logdet(S) / 2", "mu, S",
         "x[n] mu[n] S[n,n]",
         ["-inv(S) @ (x - mu)", "(inv(S) - inv(S) @ (x - mu) @ (x - mu).T @ inv(S)) / 2"],
         f"{PRML}, §2.3.4; Matrix Cookbook (2012), eqs. (57) and (61) with S symmetric",
         domains="S:spd"),
    grad("gaussian-nll-sample",
         "m * logdet(S) / 2 + trace((X - mu).T @ inv(S) @ (X - mu)) / 2", "S, mu",
         "X[n,m] mu[n] S[n,n]",
         ["(m * inv(S) - inv(S) @ (X - mu) @ (X - mu).T @ inv(S)) / 2",
          "-inv(S) @ sum(X - mu, axis=1)"],
         f"{PRML}, eqs. (2.118)-(2.122) (maximum likelihood for the Gaussian)",
         domains="S:spd"),
    grad("gaussian-nll-precision", "-logdet(P) / 2 + (x - mu).T @ P @ (x - mu) / 2", "P",
         "x[n] mu[n] P[n,n]", "(-inv(P) + (x - mu) @ (x - mu).T) / 2",
         "Matrix Cookbook (2012), eqs. (57) and (72), P symmetric", domains="P:spd"),
    grad("gp-marginal-likelihood", "-y.T @ inv(K) @ y / 2 - logdet(K) / 2", "K",
         "y[n] K[n,n]", "(alpha @ alpha.T - inv(K)) / 2",
         "Rasmussen & Williams, Gaussian Processes for Machine Learning (2006), eq. (5.9)",
         defs=[("alpha", "inv(K) @ y")], domains="K:spd"),
    grad("logdet-spd", "logdet(S)", "S", "S[n,n]", "inv(S)",
         f"{BV}, §A.4.1 (∇ log det X = X⁻¹)", domains="S:spd"),
    grad("graphical-lasso", "-logdet(P) + trace(S @ P) + lam * norm1(P)", "P",
         "P[n,n] S[n,n] lam[]", "S - inv(P) + lam * sign(P)",
         "Friedman, Hastie & Tibshirani, Sparse inverse covariance estimation with the "
         "graphical lasso (Biostatistics, 2008), eqs. (1)-(2)",
         domains="P:spd S:spd lam:positive"),
    grad("covariance-mle", "m * logdet(S) / 2 + trace(inv(S) @ C) / 2", "S",
         "S[n,n] C[n,n] m[]", "(m * inv(S) - inv(S) @ C @ inv(S)) / 2",
         "Matrix Cookbook (2012), eqs. (57) and (124) with S and C symmetric",
         domains="S:spd C:spd m:positive"),
    grad("pca-trace", "trace(W.T @ S @ W)", "W", "W[n,k] S[n,n]", "2 * S @ W",
         "Matrix Cookbook (2012), eq. (108) with B symmetric", domains="S:spd",
         future="S:symmetric"),
    grad("mahalanobis-metric", "(x - y).T @ M @ (x - y)", "M", "x[n] y[n] M[n,n]",
         "(x - y) @ (x - y).T", "Matrix Cookbook (2012), eq. (72) (Xing et al., NIPS 2002)"),
    grad("quadratic-form-symmetric", "x.T @ A @ x", "x", "x[n] A[n,n]", "2 * A @ x",
         "Matrix Cookbook (2012), eq. (81) with B symmetric", domains="A:spd",
         future="A:symmetric"),
    hessian("quadratic-form-symmetric-hessian", "x.T @ A @ x", "x", "x[n] A[n,n]", "2 * A",
            "Matrix Cookbook (2012), §2.4.4 with A symmetric", domains="A:spd",
            future="A:symmetric"),
    grad("trace-inverse-gram", "trace(inv(X.T @ X))", "X", "X[n,k]",
         "-2 * X @ inv(X.T @ X) @ inv(X.T @ X)",
         "Matrix Cookbook (2012), eq. (64) with the chain rule through XᵀX (A-optimal design, "
         f"{BV}, §7.5)", sizes={"n": 5, "k": 3}),
]


# ---------------------------------------------------------------------------------------------
# Jacobians and Hessians of maps and log-sum-exp
# ---------------------------------------------------------------------------------------------

JAC = f"{PRML}, §5.3.4 (the Jacobian of a layer: diag(h'(a)) W)"

MAPS = [
    jacobian("softmax-jacobian", "softmax(z)", "z", "z[n]", "diag(p) - p @ p.T",
             f"{PRML}, eq. (4.106)", defs=[("p", "softmax(z)")]),
    jacobian("softmax-linear-jacobian", "softmax(W @ x)", "x", "W[c,n] x[n]",
             "(diag(p) - p @ p.T) @ W", f"{PRML}, eq. (4.106) and the chain rule",
             defs=[("p", "softmax(W @ x)")]),
    jacobian("log-softmax-jacobian", "log(softmax(z))", "z", "z[n]",
             "eye(n) - ones(n) @ softmax(z).T",
             f"{DLB}, §6.2.2.3: log softmax(z)_i = z_i - log Σ_j exp(z_j)"),
    jacobian("tanh-layer-jacobian", "tanh(W @ x + b)", "x", "W[m,n] x[n] b[m]",
             "diag(1 - tanh(W @ x + b) ** 2) @ W", JAC),
    jacobian("sigmoid-jacobian", "sigmoid(x)", "x", "x[n]",
             "diag(sigmoid(x) * (1 - sigmoid(x)))", f"{PRML}, eq. (4.88)"),
    jacobian("tanh-jacobian", "tanh(x)", "x", "x[n]", "diag(1 - tanh(x) ** 2)", JAC),
    jacobian("exp-jacobian", "exp(x)", "x", "x[n]", "diag(exp(x))", JAC),
    jacobian("relu-jacobian", "relu(x)", "x", "x[n]", "diag(step(x))", JAC),
    jacobian("softplus-jacobian", "softplus(x)", "x", "x[n]", "diag(sigmoid(x))",
             f"{DLB}, §3.10: dζ/dx = σ(x)"),
    jacobian("square-jacobian", "x ** 2", "x", "x[n]", "2 * diag(x)", JAC),
    jacobian("silu-jacobian", "x * sigmoid(x)", "x", "x[n]",
             "diag(f + sigmoid(x) * (1 - f))",
             "Ramachandran, Zoph & Le, Searching for activation functions (2017), §4 "
             "(Swish, β = 1: f'(x) = f(x) + σ(x)(1 - f(x)))",
             defs=[("f", "x * sigmoid(x)")], natural="silu(x)"),
    jacobian("leaky-relu-jacobian", "relu(x) - 0.01 * relu(-x)", "x", "x[n]",
             "diag(step(x) + 0.01 * step(-x))",
             "Maas, Hannun & Ng, Rectifier nonlinearities improve neural network acoustic "
             "models (ICML 2013)", natural="maximum(x, 0.01 * x)"),
    jacobian("normalise-jacobian", "x / norm(x)", "x", "x[n]",
             "(eye(n) - x @ x.T / (x.T @ x)) / norm(x)", "Matrix Cookbook (2012), eq. (130), a = 0"),
    jacobian("affine-jacobian", "W @ tanh(x) + b", "x", "W[m,n] x[n] b[m]",
             "W @ diag(1 - tanh(x) ** 2)", JAC),
    grad("logsumexp", "logsumexp(z)", "z", "z[n]", "softmax(z)",
         f"{BV}, §3.1.5 (log-sum-exp: ∇f = exp(z) / 1ᵀexp(z))"),
    grad("logsumexp-linear", "logsumexp(X @ w)", "w", "X[m,d] w[d]", "X.T @ softmax(X @ w)",
         f"{BV}, §3.1.5 (log-sum-exp) and the chain rule"),
    hessian("logsumexp-hessian", "logsumexp(z)", "z", "z[n]",
            "diag(e) / sum(e) - e @ e.T / sum(e) ** 2",
            f"{BV}, §3.1.5 (log-sum-exp, the Hessian in terms of z = exp(x))",
            defs=[("e", "exp(z)")]),
    hessian("logsumexp-spelled-out-hessian", "log(sum(exp(z)))", "z", "z[n]",
            "diag(e) / sum(e) - e @ e.T / sum(e) ** 2",
            f"{BV}, §3.1.5 (log-sum-exp, the Hessian in terms of z = exp(x))",
            defs=[("e", "exp(z)")]),
    hessian("softplus-hessian", "sum(softplus(x))", "x", "x[n]",
            "diag(sigmoid(x) * (1 - sigmoid(x)))", f"{DLB}, §3.10 (dζ/dx = σ, dσ/dx = σ(1 - σ))"),
]

CASES = COOKBOOK + COOKBOOK_MORE + REGRESSION + CLASSIFICATION + LAYERS + GAUSSIAN + MAPS
