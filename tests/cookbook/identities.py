"""The Matrix Cookbook's derivatives (Petersen & Pedersen, version of November 15, 2012,
section 2), as matcalc expressions with the book's result.

Each entry: (equation label, expression, variable, the book's result in matcalc syntax). The
results are written the way matcalc prints (transposes on the leaves: the book's (XB + BX)^T is
B.T @ X.T + X.T @ B.T); they are compared up to the order of commutative terms. Entrywise
identities (60, 74, 75, 80, 90) appear as the vector-Jacobian products they amount to (G is the
upstream gradient). Square inputs are deliberately non-symmetric (drawn so by the check), so a
missing transpose fails; W in (84)-(88) is symmetric, as the book assumes.
"""

import matcalc as mc

n = "n"
A, B, C, D = (mc.Matrix(name, n, n) for name in "ABCD")
X = mc.Matrix("X", n, n, domain="invertible")
W = mc.Matrix("W", n, n, domain="spd")
a, b, c, d, s, x = (mc.Vector(name, n) for name in "abcdsx")
Ai = mc.Matrix("A", n, n)      # the same A, for readability where the book writes A


def eq(label, expression, wrt, book):
    return (label, expression, wrt, book)


IDENTITIES = [
    # 2.1 Derivatives of a determinant
    eq("49", mc.det(X), X, "det(X) * inv(X).T"),
    eq("51", mc.det(A @ X @ B), X, "det(A @ X @ B) * inv(X).T"),
    eq("52", mc.det(X.T @ A @ X), X, "2 * det(X.T @ A @ X) * inv(X).T"),
    eq("55", mc.logdet(X.T @ X), X, "2 * inv(X).T"),
    eq("57", mc.logdet(X), X, "inv(X).T"),
    eq("58 (k=2)", mc.det(X @ X), X, "2 * det(X @ X) * inv(X).T"),
    eq("58 (k=3)", mc.det(X @ X @ X), X, "3 * det(X @ X @ X) * inv(X).T"),
    # 2.2 Derivatives of an inverse
    eq("60 (VJP)", mc.inv(X), X, "-(inv(X).T @ G @ inv(X).T)"),
    eq("61", a.T @ mc.inv(X) @ b, X, "-(inv(X).T @ a @ b.T @ inv(X).T)"),
    eq("62", mc.det(mc.inv(X)), X, "-(det(inv(X)) * inv(X).T)"),
    eq("63", mc.trace(A @ mc.inv(X) @ B), X, "-(inv(X).T @ A.T @ B.T @ inv(X).T)"),
    eq("64", mc.trace(mc.inv(X + A)), X, "-(inv(X + A).T @ inv(X + A).T)"),
    # 2.4.1 First order
    eq("69 (x.T a)", x.T @ a, x, "a"),
    eq("69 (a.T x)", a.T @ x, x, "a"),
    eq("70", a.T @ X @ b, X, "a @ b.T"),
    eq("71", a.T @ X.T @ b, X, "b @ a.T"),
    eq("72 (a.T X a)", a.T @ X @ a, X, "a @ a.T"),
    eq("72 (a.T X.T a)", a.T @ X.T @ a, X, "a @ a.T"),
    eq("74 (VJP)", X @ A, X, "G @ A.T"),
    eq("75 (VJP)", X.T @ A, X, "A @ G.T"),
    # 2.4.2 Second order
    eq("77", b.T @ X.T @ X @ c, X, "X @ (b @ c.T + c @ b.T)"),
    eq("78", (B @ x + b).T @ C @ (D @ x + d), x,
       "B.T @ C @ (D @ x + d) + D.T @ C.T @ (B @ x + b)"),
    eq("80 (VJP)", X.T @ B @ X, X, "B @ X @ G.T + B.T @ X @ G"),
    eq("81", x.T @ B @ x, x, "(B + B.T) @ x"),
    eq("82", b.T @ X.T @ D @ X @ c, X, "D.T @ X @ b @ c.T + D @ X @ c @ b.T"),
    eq("83", (X @ b + c).T @ D @ (X @ b + c), X, "(D + D.T) @ (X @ b + c) @ b.T"),
    eq("84", (x - A @ s).T @ W @ (x - A @ s), s, "-2 * A.T @ W @ (x - A @ s)"),
    eq("85", (x - s).T @ W @ (x - s), x, "2 * W @ (x - s)"),
    eq("86", (x - s).T @ W @ (x - s), s, "-2 * W @ (x - s)"),
    eq("87", (x - A @ s).T @ W @ (x - A @ s), x, "2 * W @ (x - A @ s)"),
    eq("88", (x - A @ s).T @ W @ (x - A @ s), A, "-2 * W @ (x - A @ s) @ s.T"),
    # 2.4.3 Higher order
    eq("90 (n=2, VJP)", X @ X, X, "G @ X.T + X.T @ G"),
    eq("91 (n=2)", a.T @ X @ X @ b, X, "a @ b.T @ X.T + X.T @ a @ b.T"),
    eq("91 (n=3)", a.T @ X @ X @ X @ b, X,
       "a @ b.T @ X.T @ X.T + X.T @ a @ b.T @ X.T + X.T @ X.T @ a @ b.T"),
    # 2.5.1 Traces, first order
    eq("99", mc.trace(X), X, "eye(n)"),
    eq("100", mc.trace(X @ A), X, "A.T"),
    eq("101", mc.trace(A @ X @ B), X, "A.T @ B.T"),
    eq("102", mc.trace(A @ X.T @ B), X, "B @ A"),
    eq("103", mc.trace(X.T @ A), X, "A"),
    eq("104", mc.trace(A @ X.T), X, "A"),
    # 2.5.2 Traces, second order
    eq("106", mc.trace(X @ X), X, "2 * X.T"),
    eq("107", mc.trace(X @ X @ B), X, "B.T @ X.T + X.T @ B.T"),
    eq("108", mc.trace(X.T @ B @ X), X, "B @ X + B.T @ X"),
    eq("109", mc.trace(B @ X @ X.T), X, "B @ X + B.T @ X"),
    eq("110", mc.trace(X @ X.T @ B), X, "B @ X + B.T @ X"),
    eq("111", mc.trace(X @ B @ X.T), X, "X @ B.T + X @ B"),
    eq("112", mc.trace(B @ X.T @ X), X, "X @ B.T + X @ B"),
    eq("113", mc.trace(X.T @ X @ B), X, "X @ B.T + X @ B"),
    eq("114", mc.trace(A @ X @ B @ X), X, "A.T @ X.T @ B.T + B.T @ X.T @ A.T"),
    eq("115 (X.T X)", mc.trace(X.T @ X), X, "2 * X"),
    eq("115 (X X.T)", mc.trace(X @ X.T), X, "2 * X"),
    eq("116", mc.trace(B.T @ X.T @ C @ X @ B), X, "C.T @ X @ B @ B.T + C @ X @ B @ B.T"),
    eq("117", mc.trace(X.T @ B @ X @ C), X, "B @ X @ C + B.T @ X @ C.T"),
    eq("118", mc.trace(A @ X @ B @ X.T @ C), X, "A.T @ C.T @ X @ B.T + C @ A @ X @ B"),
    eq("119", mc.trace((A @ X @ B + C) @ (A @ X @ B + C).T), X,
       "2 * A.T @ (A @ X @ B + C) @ B.T"),
    # 2.5.3 Traces, higher order
    eq("121 (k=3)", mc.trace(X @ X @ X), X, "3 * X.T @ X.T"),
    eq("121 (k=4)", mc.trace(X @ X @ X @ X), X, "4 * X.T @ X.T @ X.T"),
    eq("122 (k=2)", mc.trace(A @ X @ X), X, "X.T @ A.T + A.T @ X.T"),
    eq("122 (k=3)", mc.trace(A @ X @ X @ X), X,
       "X.T @ X.T @ A.T + X.T @ A.T @ X.T + A.T @ X.T @ X.T"),
    # 2.5.4 Other
    eq("124", mc.trace(A @ mc.inv(X) @ B), X, "-(inv(X).T @ A.T @ B.T @ inv(X).T)"),
    # 2.6 Vector norms, 2.7 matrix norms
    eq("129", mc.norm(x - a), x, "(x - a) / norm(x - a)"),
    eq("131", mc.norm(x) ** 2, x, "2 * x"),
    eq("132", mc.norm(X) ** 2, X, "2 * X"),
]
