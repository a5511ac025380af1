"""The command line: outputs, JSON schema, exit codes 0/1/2 and one-line errors."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_module_file

from hjsym._cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and "lse" in out and "exact" in out
    code, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert {"name", "title", "family", "summary"} <= set(rows[0])


@pytest.mark.parametrize("fmt, needle", [("text", "(1) Viscous Hamilton-Jacobi equation"), ("latex", r"\begin{equation}"), ("json", '"classification"')])
def test_derive_formats(capsys, fmt, needle):
    code, out, _ = run(capsys, "derive", "lse", "--format", fmt)
    assert code == 0 and needle in out
    if fmt == "json":
        json.loads(out)


def test_check_json_schema_and_exit_zero(capsys):
    code, out, _ = run(capsys, "check", "lse", "--json", "--only", "identity", "hessian")
    data = json.loads(out)
    assert code == 0 and data["architecture"] == "lse" and data["dtype"] == "float64"
    for c in data["checks"]:
        assert {"name", "route_a", "route_b", "max_abs_err", "max_rel_err", "tolerance", "passed"} <= set(c)
        assert c["passed"] is True


def test_check_exits_one_when_a_check_fails(capsys, tmp_path):
    path = write_module_file(
        tmp_path / "bad.py",
        "from hjsym.networks.perturb import perturb\n"
        "model = perturb(hjsym.train_lse_layer(d=2, n_atoms=4, seed=0, steps=10), 'bump', 1e-6)\n",
    )
    code, out, _ = run(capsys, "check", "lse", "--module", f"{path}:model", "--only", "identity")
    assert code == 1 and "FAIL" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["check", "lsee"], "unknown architecture 'lsee'; fix: did you mean 'lse'?"),
        (["check", "lse", "--module", "nowhere.py:model"], "does not exist"),
        (["check", "lse", "--dtype", "float16"], "invalid choice"),
        (["check", "lse", "--seed", "-3"], "is negative"),
        (["check", "lse", "--only", "bogus"], "unknown check(s) bogus"),
        (["derive", "nope"], "unknown architecture"),
        (["report", "lse", "--format", "docx", "--out", "unused"], "unknown report format"),
        (["bench", "--only", "nothing"], "unknown benchmark"),
    ],
)
def test_bad_input_exits_two_with_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        sys.exit(main(argv))
    _, err = capsys.readouterr()
    assert info.value.code == 2
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("hjsym: error")]) == 1


def test_module_file_that_is_not_of_lse_form(capsys, tmp_path):
    path = write_module_file(tmp_path / "mlp.py", "model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))\n")
    code, _, err = run(capsys, "check", "lse", "--module", f"{path}:model")
    assert code == 2 and "exactly one nn.Linear" in err and "fix:" in err


def test_console_script_and_debug_traceback(tmp_path):
    env = {**os.environ}
    proc = subprocess.run([sys.executable, "-m", "hjsym", "check", "nope"], capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "hjsym", "--debug", "check", "nope"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_derive_prints_unicode_mathematics_within_100_columns(capsys):
    code, out, _ = run(capsys, "derive", "gru")
    assert code == 0 and "Eq(" not in out and "\\dot" not in out and "\\mathrm" not in out
    assert "𝓗" in out and "(1 - zᵢ)(nᵢ - sᵢ)" in out  # readable, as a person writes it
    assert max(len(line) for line in out.splitlines()) <= 100


def test_quiet_verbose_and_examples(capsys):
    code, out, _ = run(capsys, "--quiet", "derive", "lse")
    assert code == 0 and out.strip() == "lse: 24 steps, exact"
    code, out, _ = run(capsys, "check", "lse", "--only", "identity", "--negative-controls")
    assert code == 0 and "negative control" in out and "fails" in out
    code, out, _ = run(capsys, "check", "lse", "--only", "identity", "-q")
    assert out.strip() == "lse: 1/1 checks pass"
    for command in ("list", "derive", "check", "report", "verify", "bench", "experiment"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "examples:" in capsys.readouterr().out


def test_report_prints_a_summary_and_where_to_open(capsys, tmp_path):
    code, out, _ = run(capsys, "report", "lse", "--out", str(tmp_path), "--format", "html")
    assert code == 0 and f"open {tmp_path / 'index.html'}" in out and len(out.splitlines()) <= 3
    code, out, _ = run(capsys, "report", "lse", "--out", str(tmp_path), "--format", "html", "--verbose")
    assert str(tmp_path / "lse" / "index.html") in out


def test_a_closed_pipe_ends_quietly():
    proc = subprocess.Popen([sys.executable, "-m", "hjsym", "derive", "lse"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.readline()
    proc.stdout.close()
    _, err = proc.communicate(timeout=300)
    assert b"Traceback" not in err and b"BrokenPipe" not in err


SPEC_FILES = Path(__file__).resolve().parents[2] / "derivations" / "spec_files"


@pytest.mark.parametrize("name", ["leaky_cell.py", "tempered_lse.py"])
def test_derive_check_report_a_spec_file(capsys, tmp_path, name):
    path = str(SPEC_FILES / name)
    code, out, _ = run(capsys, "derive", path)
    assert code == 0 and "(1)" in out
    code, out, _ = run(capsys, "check", path, "--json", "--negative-controls")
    data = json.loads(out)
    assert code == 0 and data["passed"] and all(not c["details"]["negative_control"]["passed"] for c in data["checks"])
    code, out, _ = run(capsys, "report", path, "--out", str(tmp_path), "--format", "html", "--no-cache")
    arch = data["architecture"]
    assert code == 0 and (tmp_path / arch / "index.html").exists()
    assert f"hjsym check {path}" in (tmp_path / arch / "index.html").read_text()


def test_forward_kwargs_must_be_a_json_object(capsys):
    with pytest.raises(SystemExit) as info:
        main(["check", "lse", "--forward-kwargs", "[1, 2]"])
    assert info.value.code == 2 and "not a JSON object" in capsys.readouterr().err
