"""The matcalc command: output, --numpy, --check, and exit codes 0 / 1 / 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from matcalc import cli

QUICKSTART = ["grad", "sum((tanh(W @ X + b) - Y)**2)", "--wrt", "W", "--shape", "W=n,d",
              "--shape", "X=d,m", "--shape", "b=n", "--shape", "Y=n,m"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, capsys):
    code = cli.run(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_quickstart_prints_text_and_latex(capsys):
    code, out, err = run(QUICKSTART, capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    # the shared activation is named, as the seed notes write it, then the result in its terms
    assert lines[:2] == ["a = tanh(W @ X + b)", "d/dW = 2 * ((a - Y) * (1 - a ** 2)) @ X.T"]
    assert lines[2] == r"LaTeX: a = \tanh\left(W X + b \mathbf{1}^{\top}\right)"
    assert lines[3].startswith(r"LaTeX: \frac{\partial f}{\partial W} = 2 \left(")


def test_numpy_prints_a_function_that_runs(capsys):
    code, out, _ = run(QUICKSTART + ["--numpy"], capsys)
    assert code == 0
    source = out[out.index("import numpy"):]
    namespace = {}
    exec(compile(source, "<cli output>", "exec"), namespace)   # the printed, generated code
    import numpy as np
    rng = np.random.default_rng(0)
    W, X = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    b, Y = rng.standard_normal(3), rng.standard_normal((3, 4))
    t = np.tanh(W @ X + b[:, None])
    want = 2 * (((t - Y) * (1 - t ** 2)) @ X.T)
    np.testing.assert_allclose(namespace["gradient"](W, X, b, Y), want)


def test_check_passes_with_sizes_and_seed(capsys):
    code, out, _ = run(QUICKSTART + ["--check", "--size", "n=4,d=2", "--seed", "3"], capsys)
    assert code == 0
    assert "numeric check PASSED" in out and "n=4" in out and "d=2" in out and "seed 3" in out


def test_several_variables(capsys):
    code, out, _ = run(["grad", "W @ X + b", "--wrt", "W,b", "--wrt", "X", "--shape", "W=n,d",
                        "--shape", "X=d,m", "--shape", "b=n"], capsys)
    assert code == 0
    assert [l for l in out.splitlines() if l.startswith("d/d")] == [
        "d/dW = G @ X.T", "d/db = sum(G, axis=1)", "d/dX = W.T @ G"]


def test_scalars_and_domains(capsys):
    code, out, _ = run(["grad", "a * sum(log(X))", "--wrt", "a,X", "--shape", "a=",
                        "--shape", "X=n,n", "--domain", "X=positive", "--check"], capsys)
    assert code == 0, out
    assert "d/da = sum(log(X))" in out and "d/dX = a / X" in out


@pytest.mark.parametrize("args,fragment", [
    (["grad", "trace(A @ X", "--wrt", "X", "--shape", "A=n,n", "--shape", "X=n,n"],
     "was never closed"),
    (["grad", "A @ X", "--wrt", "X", "--shape", "A=n,m", "--shape", "X=n,n"],
     "shape mismatch in A @ B: A is n×m and X is n×n"),
    (["grad", "A + Z", "--wrt", "Z", "--shape", "A=n,n"],
     "the shape of 'Z' is not fixed by its use (a scalar, a vector or a matrix?): declare it, "
     "e.g. --shape Z=n,n (the shape of what it meets), or read names by their letter with "
     "--infer-kinds"),
    (["grad", "sum(A)", "--wrt", "Q", "--shape", "A=n,n"], "'Q' is not a variable"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A"], "expected NAME=DIMS"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n,n"], "one or two dimensions"),
    (["grad", "sum(log(A))", "--wrt", "A", "--shape", "A=n,n", "--check"], "declare"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n", "--check", "--size", "n=x"],
     "NAME=INTEGER"),
    (["grad", "det(A)", "--wrt", "A", "--shape", "A=n,m"], "det needs a square matrix"),
    (["grad", "__import__('os')", "--wrt", "A", "--shape", "A=n,n"], "matcalc: error:"),
    # spellings int() refuses: a digit that is not a number, more digits than Python converts
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,²"], "a dimension is a name or an integer"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n", "--check", "--size", "n=²"],
     "NAME=INTEGER"),
    (["grad", "sum(A)", "--wrt", "A", "--shape", "A=n,n", "--check", "--size", "n=" + "9" * 5000],
     "at most 15 digits"),
    (["grad", "sum(A)", "--wrt", ",", "--shape", "A=n,n"], "--wrt: name the variable"),
])
def test_bad_input_exits_2_with_a_one_line_message(args, fragment, capsys):
    code, out, err = run(args, capsys)
    assert code == 2
    assert err.startswith("matcalc: error: ")
    assert fragment in err
    assert "Traceback" not in err


def test_missing_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.run(["grad", "sum(A)"])
    assert exit_info.value.code == 2


def test_a_failing_check_exits_1(monkeypatch, capsys):
    # Sabotage the generated code (a wrong factor of 2): the check must notice and exit 1.
    from matcalc import api
    real = api.Derivation.numpy_source
    monkeypatch.setattr(api.Derivation, "numpy_source",
                        lambda self, name="gradient": real(self, name).replace(
                            "return ", "return 2 * "))
    code, out, _ = run(["grad", "sum(A * A)", "--wrt", "A", "--shape", "A=n,n", "--check"],
                       capsys)
    assert code == 1
    assert "numeric check FAILED" in out and "WRONG" in out


def test_the_installed_command_runs_as_a_module():
    result = subprocess.run([sys.executable, "-m", "matcalc", *QUICKSTART], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("a = tanh(W @ X + b)\nd/dW = 2 * ")


def test_hessian_with_respect_to_a_matrix_prints_the_tensor_and_its_kronecker_form(capsys):
    code, out, err = run(["hessian", "trace(X.T @ A @ X)", "--wrt", "X", "--shape", "X=n,n",
                          "--shape", "A=n,n", "--check"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == 'H = einsum("ik,jl->ijkl", A + A.T, eye(n))'
    assert lines[1] == "layout: H[i, j, k, l] = d2 f / dX_ij dX_kl"
    assert lines[2] == "vec form: kron(eye(n), A + A.T)"
    assert "numeric check PASSED" in out


def test_jacobian_and_hessian_in_matrix_form(capsys):
    code, out, _ = run(["jacobian", "tanh(A @ x)", "--wrt", "x", "--shape", "A=m,n",
                        "--shape", "x=n", "--numpy"], capsys)
    assert code == 0
    assert out.splitlines()[0] == "# J = diag(1 - tanh(A @ x) ** 2) @ A"    # a comment: see below
    assert "def gradient(A, x):" in out or "def gradient(x, A):" in out
    code, out, _ = run(["hessian", "x.T @ A @ x", "--wrt", "x", "--shape", "x=n",
                        "--shape", "A=n,n"], capsys)
    assert code == 0 and out.splitlines()[0] == "H = A + A.T"


def test_hessian_of_a_non_scalar_is_bad_input(capsys):
    code, _, err = run(["hessian", "A @ x", "--wrt", "x", "--shape", "x=n", "--shape", "A=n,n"],
                       capsys)
    assert code == 2 and "scalar" in err


def test_a_reader_that_stops_early_gets_no_traceback():
    # the reader stops after the first line, as `matcalc ... | head -1` does; matcalc writes the
    # check's report after that, into a closed pipe
    command = [sys.executable, "-m", "matcalc", "hessian", "trace(X.T @ A @ X)", "--wrt", "X",
               "--shape", "X=n,n", "--shape", "A=n,n", "--check"]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                                bufsize=0)
    first = producer.stdout.readline()
    producer.stdout.close()
    err = producer.stderr.read().decode()
    assert producer.wait(timeout=60) == 0
    assert first.startswith(b"H = einsum(") and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# The commands of issue 16: --version, hvp, backward, files that import, --json, hints
# ---------------------------------------------------------------------------------------------

def python(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env=env)


def load_module(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"written_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_version_and_help_answer_without_importing_sympy():
    probe = ("import sys, runpy; sys.argv = ['matcalc'] + sys.argv[1:]\n"
             "try:\n    runpy.run_module('matcalc', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\n"
             "heavy = sorted(m for m in ('sympy', 'numpy', 'latex2mathml', 'matcalc.api',\n"
             "               'matcalc.printing.notes') if m in sys.modules)\n"
             "print('EXIT', code, 'HEAVY', heavy)")
    version = python("-c", probe, "--version")
    assert version.stdout.splitlines() == ["matcalc 0.1.0", "EXIT 0 HEAVY []"], version.stderr
    helped = python("-c", probe, "--help")
    assert helped.stdout.splitlines()[-1] == "EXIT 0 HEAVY []"
    assert "hvp" in helped.stdout and "backward" in helped.stdout


def test_a_gradient_does_not_import_the_notes_machinery():
    probe = ("import sys\nfrom matcalc import cli\n"
             "cli.run(['grad', 'A @ B', '--wrt', 'A', '--shape', 'A=n,m', '--shape', 'B=m,k'])\n"
             "print(sorted(m for m in ('latex2mathml', 'matcalc.printing.notes', 'matcalc.steps',"
             " 'matcalc.web.server') if m in sys.modules))")
    result = python("-c", probe)
    assert result.stdout.splitlines()[-1] == "[]", result.stderr


def test_the_steps_formats_are_the_notes_renderings():
    from matcalc.printing.notes import RENDERINGS
    from matcalc.web.worker import DEFAULT_TIMEOUT
    assert cli.FORMATS == tuple(RENDERINGS)
    assert cli.DEFAULT_TIMEOUT == DEFAULT_TIMEOUT


def test_hvp_prints_the_product_and_its_direction(capsys):
    code, out, err = run(["hvp", "trace(X.T @ A @ X)", "--wrt", "X", "--shape", "X=n,n",
                          "--shape", "A=n,n", "--check"], capsys)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "Hv = (A.T + A) @ v"
    assert lines[1] == "direction: v=n,n (the shape of X)"
    assert "numeric check PASSED" in out


def test_hvp_code_matches_numpy(capsys, tmp_path):
    import numpy as np
    target = tmp_path / "hvp_mod.py"
    code, out, _ = run(["hvp", "x.T @ A @ x + sum(exp(x))", "--wrt", "x", "--shape", "x=n",
                        "--shape", "A=n,n", "--direction", "u", "--numpy", "-o", str(target)],
                       capsys)
    assert code == 0 and out.splitlines()[-1] == f"code written to {target}"
    module = load_module(target)
    rng = np.random.default_rng(1)
    A, x, u = rng.standard_normal((4, 4)), rng.standard_normal(4), rng.standard_normal(4)
    want = (A + A.T) @ u + np.exp(x) * u         # the Hessian A + A.T + diag(exp(x)), times u
    got = np.asarray(module.gradient(x=x, A=A, u=u)).reshape(-1)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_backward_writes_a_module_with_forward_and_backward(capsys, tmp_path):
    import numpy as np
    target = tmp_path / "model.py"
    code, out, err = run(["backward", "sum((tanh(W @ X + b) - Y) ** 2)", "--wrt", "W,b",
                          "--shape", "W=n,d", "--shape", "X=d,m", "--shape", "b=n",
                          "--shape", "Y=n,m", "-o", str(target)], capsys)
    assert code == 0 and err == ""
    assert out.startswith("# forward(") and str(target) in out
    module = load_module(target)
    rng = np.random.default_rng(2)
    W, X = rng.standard_normal((3, 2)), rng.standard_normal((2, 5))
    b, Y = rng.standard_normal(3), rng.standard_normal((3, 5))
    loss, kept = module.forward(W=W, X=X, b=b, Y=Y)
    dW, db = module.backward(kept)
    t = np.tanh(W @ X + b[:, None])
    delta = 2 * (t - Y) * (1 - t ** 2)
    np.testing.assert_allclose(loss, np.sum((t - Y) ** 2))
    np.testing.assert_allclose(dW, delta @ X.T)
    np.testing.assert_allclose(db, delta.sum(axis=1))


def test_backward_to_stdout_is_the_module(capsys):
    code, out, _ = run(["backward", "sum(tanh(W @ x))", "--wrt", "W", "--shape", "W=n,d",
                        "--shape", "x=d"], capsys)
    assert code == 0
    namespace = {}
    exec(compile(out, "<backward>", "exec"), namespace)    # the printed, generated module
    assert callable(namespace["forward"]) and callable(namespace["backward"])


def test_numpy_to_a_file_is_an_importable_module_of_code_alone(capsys, tmp_path):
    import numpy as np
    target = tmp_path / "grad.py"
    code, out, _ = run(QUICKSTART + ["--numpy", "-o", str(target), "--check"], capsys)
    assert code == 0
    text = target.read_text()
    assert text.startswith("import numpy") and "d/dW" not in text and "PASSED" not in text
    assert "d/dW = " in out and "numeric check PASSED" in out     # the rest stays on stdout
    module = load_module(target)
    rng = np.random.default_rng(3)
    W, X = rng.standard_normal((3, 2)), rng.standard_normal((2, 4))
    b, Y = rng.standard_normal(3), rng.standard_normal((3, 4))
    t = np.tanh(W @ X + b[:, None])
    np.testing.assert_allclose(module.gradient(W=W, X=X, b=b, Y=Y),
                               2 * ((t - Y) * (1 - t ** 2)) @ X.T, rtol=1e-12)


def test_a_py_file_receives_the_code_even_without_numpy(capsys, tmp_path):
    target = tmp_path / "g.py"
    code, out, _ = run(["grad", "sum(A * B)", "--wrt", "A", "--shape", "A=n,m", "--shape",
                        "B=n,m", "-o", str(target)], capsys)
    assert code == 0 and "d/dA = B" in out
    import numpy as np
    B = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(load_module(target).gradient(A=np.zeros((2, 3)), B=B), B)


def test_numpy_on_stdout_redirected_to_a_file_imports(tmp_path):
    result = python("-m", "matcalc", *QUICKSTART, "--numpy", "--check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# a = tanh(W @ X + b)\n# d/dW = 2 * ")
    target = tmp_path / "redirected.py"
    target.write_text(result.stdout)
    assert callable(load_module(target).gradient)


def test_json_holds_result_latex_code_and_check(capsys):
    import json
    import numpy as np
    code, out, err = run(["grad", "trace(A @ X @ B)", "--wrt", "X", "--shape", "A=n,n",
                          "--shape", "X=n,n", "--shape", "B=n,n", "--json", "--check"], capsys)
    assert code == 0 and err == ""
    data = json.loads(out)
    assert data["command"] == "grad" and data["expression"] == "trace(A @ X @ B)"
    assert data["results"] == [{"wrt": "X", "text": "A.T @ B.T",
                                "latex": r"\frac{\partial f}{\partial X} = A^{\top} B^{\top}"}]
    assert data["shapes"] == {"A": "n,n", "X": "n,n", "B": "n,n"}
    assert data["check"][0]["ok"] is True and data["check"][0]["worst_relative_error"] < 1e-6
    namespace = {}
    exec(compile(data["code"], "<json code>", "exec"), namespace)
    A, X, B = (np.random.default_rng(4).standard_normal((3, 3)) for _ in range(3))
    np.testing.assert_allclose(namespace["gradient"](A=A, X=X, B=B), A.T @ B.T)


def test_json_reports_an_error_as_json_too(capsys):
    import json
    code, out, err = run(["grad", "A + Z", "--wrt", "A", "--shape", "A=n,n", "--json"], capsys)
    assert code == 2 and err.startswith("matcalc: error: ")
    error = json.loads(out)["error"]
    assert error["kind"] == "ParseError" and (error["start"], error["end"]) == (4, 5)


def test_jacobian_with_several_variables_gives_one_per_variable(capsys):
    import numpy as np
    code, out, err = run(["jacobian", "tanh(A @ x + B @ y)", "--wrt", "x,y", "--shape", "A=m,n",
                          "--shape", "x=n", "--shape", "B=m,k", "--shape", "y=k", "--numpy"],
                         capsys)
    assert code == 0 and err == ""
    assert out.splitlines()[:4:2] == ["# J_x = diag(1 - tanh(A @ x + B @ y) ** 2) @ A",
                                      "# J_y = diag(1 - tanh(A @ x + B @ y) ** 2) @ B"]
    namespace = {}
    exec(compile(out, "<jacobians>", "exec"), namespace)
    rng = np.random.default_rng(5)
    A, B = rng.standard_normal((3, 2)), rng.standard_normal((3, 4))
    x, y = rng.standard_normal(2), rng.standard_normal(4)
    s = 1 - np.tanh(A @ x + B @ y) ** 2
    np.testing.assert_allclose(namespace["jacobian_x"](A=A, x=x, B=B, y=y), s[:, None] * A)
    np.testing.assert_allclose(namespace["jacobian_y"](A=A, x=x, B=B, y=y), s[:, None] * B)


def test_hessian_takes_one_variable(capsys):
    code, _, err = run(["hessian", "x.T @ y", "--wrt", "x,y", "--shape", "x=n", "--shape", "y=n"],
                       capsys)
    assert code == 2 and "hessian takes one variable" in err


@pytest.mark.parametrize("args,hint", [
    (["grad", "sum(log(A))", "--wrt", "A", "--shape", "A=n,n", "--check"],
     "--domain A=positive"),
])
def test_hints_are_spelled_as_the_command_line_reads_them(args, hint, capsys):
    code, _, err = run(args, capsys)
    assert code == 2 and hint in err
    assert "domains=" not in err and "shapes=" not in err and "{" not in err


def test_python_hints_keep_python_spelling():
    import matcalc as mc
    with pytest.raises(mc.DomainError, match=r"domains=\{'A': 'positive'\}"):
        mc.derive("sum(log(A))", "A", shapes={"A": ("n", "n")}).check()


@pytest.mark.parametrize("text,first_line,column", [
    ("x' @ A @ x", "x' is MATLAB's transpose: write x.T", 1),
    ("sum((A @ x)' @ x)", "(...)' is MATLAB's transpose: write (...).T", 11),
    ("sum(A .* A)", "write * for the elementwise product (.* is MATLAB spelling)", 6),
    ("sum(A ./ A)", "write / for elementwise division (./ is MATLAB spelling)", 6),
    ("sum(A.^2)", "write ** for an elementwise power (.^ is MATLAB spelling)", 5),
])
def test_matlab_spellings_get_a_one_line_fix_with_a_caret(text, first_line, column, capsys):
    code, _, err = run(["grad", text, "--wrt", "A", "--shape", "A=n,n", "--shape", "x=n"], capsys)
    assert code == 2
    lines = err.splitlines()
    assert lines == ["matcalc: error: " + first_line, "  " + text, "  " + " " * column + "^" *
                     (1 if "'" in first_line else 2)]


def test_a_quote_that_closes_a_string_is_not_taken_for_a_transpose(capsys):
    code, _, err = run(["grad", "einsum('ij,jk->ik', A A)", "--wrt", "A", "--shape", "A=n,n"],
                       capsys)
    assert code == 2 and "MATLAB" not in err and "invalid syntax" in err


def test_errors_echo_at_most_one_short_line_of_a_long_input(capsys):
    text = " + ".join(["sum(A)"] * 1500) + " + sum(Q)"            # 13.5 kB, Q unknown
    code, _, err = run(["grad", text, "--wrt", "A", "--shape", "A=n,n"], capsys)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 3 and "the shape of 'Q' is not fixed" in lines[0]
    echo, caret = lines[1], lines[2]
    assert len(echo) < 100 and echo.startswith("  …") and echo.endswith("sum(Q)")
    assert echo[len(caret) - 1] == "Q" and caret.strip() == "^"


def test_ctrl_c_during_a_long_derivation_exits_with_one_line():
    import signal
    import time
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "matcalc", "grad", "sum(tanh(A @ B @ C))", "--wrt", "A",
               "--shape", "A=n,n", "--shape", "B=n,n", "--shape", "C=n,n", "--check",
               "--size", "n=1200"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env=env)
    first = proc.stdout.readline()          # the result is out: the long check is running
    assert first.startswith(b"d/dA = ")
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert err.decode() == "matcalc: interrupted\n"


def test_a_function_named_but_not_defined(capsys):
    """--function g: seed 002's activation, derived with g' and checked with g = sin."""
    args = ["grad", "sum((g(W @ X + b) - Y)**2)", "--wrt", "W", "--function", "g", "--shape",
            "W=n,d", "--shape", "X=d,m", "--shape", "b=n", "--shape", "Y=n,m", "--check"]
    code, out, err = run(args, capsys)
    assert code == 0 and err == ""
    assert out.splitlines()[0] == "d/dW = 2 * ((g(W @ X + b) - Y) * g'(W @ X + b)) @ X.T"
    assert "numeric check PASSED" in out
    code, out, err = run(args[:2] + ["--wrt", "W", "--shape", "W=n,n"], capsys)
    assert code == 2 and "(name your own with --function g)" in err
