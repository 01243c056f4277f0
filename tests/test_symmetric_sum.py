"""X + X.T in generated NumPy code: the ``symmetric_sum`` helper gives exactly X + X.T (values
and dtype) for every square size, dtype and memory layout, on its banded path and its plain one;
NumPy code uses it for X + X.T and X.T + X, portable code does not."""

from __future__ import annotations

import numpy as np
import pytest

import matcalc as mc
from matcalc import expr as E
from matcalc.api import compile_source
from matcalc.printing.numpy import SYMMETRIC_SUM, Output, compile_module, numpy_source

A = mc.Matrix("A", "n", "n")
x = mc.Vector("x", "n")

SIZES = [1, 2, 3, 63, 255, 256, 257, 300, 512, 513]
DTYPES = [np.float64, np.float32, np.int64, np.int32, np.int8, np.bool_, np.complex128]


def helper():
    """symmetric_sum as a generated module defines it."""
    source = "import numpy as np\n\n\n" + SYMMETRIC_SUM.format(name="symmetric_sum", np="np")
    return compile_module(source, "symmetric_sum").symmetric_sum


def random_matrix(n: int, dtype, rng) -> np.ndarray:
    values = rng.integers(-50, 50, size=(n, n)) if np.dtype(dtype).kind in "iub" else \
        rng.standard_normal((n, n))
    return values.astype(dtype)


def padded_rows(m: np.ndarray) -> np.ndarray:
    """m's values in a view whose rows are a multiple of 2 KiB apart (the banded path)."""
    n, size = m.shape[0], m.itemsize
    width = -(-max(n * size, 2048) // 2048) * 2048 // size
    big = np.zeros((n, width), m.dtype)
    big[:, :n] = m
    return big[:, :n]


def every_other(m: np.ndarray) -> np.ndarray:
    """m's values in a view taking every other row and column of a larger array (rows a
    multiple of 2 KiB apart, as in padded_rows)."""
    n, size = m.shape[0], m.itemsize
    width = -(-max(2 * n * size, 1024) // 1024) * 1024 // size
    big = np.zeros((2 * n, width), m.dtype)
    big[::2, :2 * n:2] = m
    return big[::2, :2 * n:2]


def reversed_rows(m: np.ndarray) -> np.ndarray:
    """m's values in a view with a negative row stride (rows 2 KiB apart, as in padded_rows)."""
    return padded_rows(m[::-1])[::-1]


LAYOUTS = {"C": np.ascontiguousarray, "Fortran": np.asfortranarray, "padded rows": padded_rows,
           "every other": every_other, "reversed rows": reversed_rows}


def banded(m: np.ndarray) -> bool:
    """Whether symmetric_sum takes its banded path for m (the rest is m + m.T itself)."""
    return m.shape[0] >= 256 and m.strides[0] % 2048 == 0


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("n", SIZES)
def test_helper_is_exactly_x_plus_x_transpose(n, dtype, layout):
    m = LAYOUTS[layout](random_matrix(n, dtype, np.random.default_rng(n)))
    want = m + m.T
    got = helper()(m)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got, want)
    assert got.flags.writeable and not np.shares_memory(got, m)


def test_the_cases_cover_the_banded_path():
    for layout in ("C", "padded rows", "every other", "reversed rows"):
        for n in (256, 257, 300, 513):
            m = LAYOUTS[layout](random_matrix(n, np.float64, np.random.default_rng(0)))
            assert banded(m) == (layout != "C" or n == 256), (layout, n)
    assert banded(random_matrix(512, np.float32, np.random.default_rng(0)))
    assert not banded(padded_rows(random_matrix(255, np.float64, np.random.default_rng(0))))


def test_helper_keeps_nan_and_infinity_where_the_plain_sum_does():
    m = padded_rows(np.random.default_rng(1).standard_normal((300, 300)))
    m[3, 7], m[9, 2], m[5, 5] = np.nan, np.inf, -np.inf
    np.testing.assert_array_equal(helper()(m), m + m.T)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("n", [1, 3, 256, 300, 512])
def test_generated_hessian_is_a_plus_a_transpose(n, dtype, layout):
    f = mc.hessian(x.T @ A @ x, x).numpy_function()
    a = LAYOUTS[layout](random_matrix(n, dtype, np.random.default_rng(n)))
    converted = np.asarray(a, dtype=np.result_type(a, 0.0))     # float32 stays, ints: float64
    want = converted + converted.T
    got = f(x=np.ones(n, dtype), A=a)
    assert got.dtype == want.dtype
    assert np.array_equal(got, want)


def test_generated_gradient_uses_the_helper_inside_a_product():
    g = mc.grad(x.T @ A @ x, x)
    assert "symmetric_sum(A) @ x" in g.numpy_source()
    rng = np.random.default_rng(2)
    a, v = rng.standard_normal((512, 512)), rng.standard_normal(512)
    np.testing.assert_allclose(g.numpy_function()(x=v, A=a), (a + a.T) @ v, rtol=1e-12)


@pytest.mark.parametrize("node, plain", [(E.add(A, E.Transpose.make(A)), "A + A.T"),
                                         (E.add(E.Transpose.make(A), A), "A.T + A")],
                         ids=["X + X.T", "X.T + X"])
def test_numpy_code_uses_the_helper_and_portable_code_does_not(node, plain):
    source = numpy_source([Output(node)], [A], "f")
    assert "def symmetric_sum(x):" in source and "return symmetric_sum(A)" in source
    assert plain not in source.split("def f(")[1]
    a = padded_rows(random_matrix(300, np.float32, np.random.default_rng(3)))
    assert np.array_equal(compile_source(source, "f")(a), a + a.T)

    portable = numpy_source([Output(node)], [A], "f", portable=True)
    assert "symmetric_sum" not in portable and f"return {plain}" in portable
    assert np.array_equal(compile_source(portable, "f")(a), a + a.T)


def test_other_sums_print_as_before():
    B = mc.Matrix("B", "n", "n")
    for node, text in [(A + B.T, "A + B.T"), (A + A, "A + A"), (A.T + B, "A.T + B")]:
        source = numpy_source([Output(node)], [A, B], "f")
        assert f"return {text}" in source and "symmetric_sum" not in source
