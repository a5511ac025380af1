"""Every fault a user or the environment can cause ends in exit 2 with one line naming the problem and the fix.

Also: a closed stdout ends quietly, a module's own code runs in a guard, work above the memory budget is refused before it
starts, a refused scheduler fails within two seconds, half-precision modules are refused, and worker processes die with
their parent.
"""

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import hjsym
from hjsym._cli import main
from tests.helpers import write_module_file

ROOT = Path(__file__).resolve().parents[2]


def _fails_with(capsys, argv, *needles):
    """``main(argv)`` exits 2 with one ``hjsym: error:`` line that names every needle (and a fix)."""
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    line = next(e for e in err if e.startswith("hjsym: error:"))
    assert "fix:" in line, line
    for n in needles:
        assert n in line, line
    return line


# ----------------------------------------------------------------------------- output paths
def test_out_an_existing_file_is_exit_2_before_any_work(capsys, tmp_path, monkeypatch):
    import hjsym.experiments
    import hjsym.reports.pages as pages

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output folder was checked")

    monkeypatch.setattr(pages, "_collect", no_work)
    monkeypatch.setattr(hjsym.experiments, "run_experiment", no_work)
    f = tmp_path / "a-file"
    f.write_text("x")
    _fails_with(capsys, ["report", "lse", "--out", str(f)], "cannot write", "is a file")
    _fails_with(capsys, ["experiment", "phase", "--quick", "--workers", "0", "--out", str(f)], "cannot write")


def test_out_read_only_is_exit_2(capsys, tmp_path):
    if os.geteuid() == 0:  # root writes through file modes; /sys refuses everyone
        target = "/sys/hjsym-test-out"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        os.chmod(ro, 0o500)
        target = str(ro / "out")
    _fails_with(capsys, ["report", "lse", "--out", target], "cannot write", "write to a folder you can write")


def test_a_full_disk_is_exit_2(capsys, tmp_path, monkeypatch):
    from hjsym import _cache

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_cache.tempfile, "mkstemp", full)
    _fails_with(capsys, ["report", "lse", "--out", str(tmp_path / "out")], "No space left", "free disk space")


def test_any_other_os_error_of_the_environment_is_exit_2(capsys, monkeypatch):
    import hjsym._cli as cli

    def broken(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/somewhere/file")

    monkeypatch.setitem(cli.COMMANDS, "list", broken)
    _fails_with(capsys, ["list"], "Permission denied", "/somewhere/file")


# ----------------------------------------------------------------------------- option values
def test_a_seed_beyond_64_bits_is_exit_2(capsys):
    with pytest.raises(SystemExit) as info:  # argparse's own errors exit while parsing
        main(["check", "lse", "--seed", "99999999999999999999999"])
    assert info.value.code == 2 and "largest seed" in capsys.readouterr().err


def test_seeds_are_validated_in_the_api():
    import hjsym
    from hjsym import InputError

    with pytest.raises(InputError, match="from 0 to"):
        hjsym.check("lse", seed=2**40)


def test_a_malformed_scheduler_address_is_exit_2(capsys, tmp_path):
    pytest.importorskip("distributed")
    _fails_with(capsys, ["experiment", "phase", "--quick", "--scheduler", "notaurl", "--out", str(tmp_path)], "not a scheduler address")


def test_a_refused_scheduler_fails_within_two_seconds(capsys, tmp_path):
    pytest.importorskip("distributed")
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.perf_counter()
    _fails_with(capsys, ["experiment", "phase", "--quick", "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path)],
                "cannot reach the Dask scheduler")
    assert time.perf_counter() - t0 <= 2.0


def test_a_missing_optional_dependency_is_exit_2(capsys, tmp_path, monkeypatch):
    import socket

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with socket.socket() as s:  # a port that accepts connections: the address is fine, Dask is missing
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        _fails_with(capsys, ["experiment", "phase", "--quick", "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path)],
                    "dask.distributed", "pip install")


def test_a_missing_dependency_anywhere_is_exit_2(capsys, monkeypatch):
    import hjsym._cli as cli

    def missing(args):
        raise ModuleNotFoundError("No module named 'matplotlib'", name="matplotlib")

    monkeypatch.setitem(cli.COMMANDS, "list", missing)
    _fails_with(capsys, ["list"], "cannot be imported", "pip install matplotlib")


# ----------------------------------------------------------------------------- the user's module
def test_a_factory_that_raises_is_exit_2(capsys, tmp_path):
    f = write_module_file(tmp_path / "bad.py", "def model():\n    raise RuntimeError('no weights here')\n")
    _fails_with(capsys, ["check", "lse", "--module", f"{f}:model"], "your module raised RuntimeError", "no weights here")


_FORWARD_EXITS = textwrap.dedent("""
    import sys

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.eps = nn.Linear(2, 4), 0.5

        def forward(self, x):
            sys.exit(5)

    model = Layer()
""")


@pytest.mark.parametrize("where", ["file", "factory", "forward"])
def test_a_module_calling_sys_exit_is_exit_2_with_a_message(capsys, tmp_path, where):
    body = {"file": "import sys\nsys.exit(5)\n", "factory": "import sys\ndef model():\n    sys.exit(5)\n", "forward": _FORWARD_EXITS}[where]
    f = write_module_file(tmp_path / "exits.py", body)
    _fails_with(capsys, ["check", "lse", "--module", f"{f}:model"], "sys.exit(5)")


def test_half_precision_modules_are_refused_not_upcast(capsys, tmp_path):
    for dt in ("float16", "bfloat16"):
        f = write_module_file(tmp_path / f"half_{dt}.py", textwrap.dedent(f"""
            from tests.helpers import lse_module
            model = lse_module(2, 4, 0.5).to(torch.{dt})
        """))
        _fails_with(capsys, ["check", "lse", "--module", f"{f}:model"], dt, "module.float()")


def test_a_float32_module_checked_in_float64_says_so():
    import hjsym
    from tests.helpers import lse_module

    r = hjsym.check("lse", module=lse_module(2, 4, 0.5).float(), only=["identity"])
    assert any("float32" in n and "--dtype float32" in n for n in r.notes), r.notes


# ----------------------------------------------------------------------------- resources
def test_a_module_too_large_for_the_budget_is_refused_before_it_runs(capsys, tmp_path):
    f = write_module_file(tmp_path / "wide.py", "from tests.helpers import lse_module\nmodel = lse_module(500, 16, 0.5)\n")
    hjsym.derive("lse")  # the derivation is not what is timed: the refusal comes before any check runs
    t0 = time.perf_counter()
    line = _fails_with(capsys, ["check", "lse", "--module", f"{f}:model", "--max-memory", "10M"], "needs about", "memory budget",
                       "--max-memory")
    assert "(M, d, d) Hessians" in line and time.perf_counter() - t0 < 10


def test_the_default_budget_refuses_the_audit_sizes():
    """d = 5000 and N = 2e7 (the audit's sizes): estimated far above half the memory of any workstation, refused at once."""
    from hjsym._resources import memory_budget
    from hjsym.checks.api import context
    from hjsym.checks.engine import Network
    from hjsym.checks.suites.lse import cost

    class Sized:
        def __init__(self, N, d):
            self.n_atoms, self.d = N, d

        def describe(self):
            return f"LSE(d={self.d}, N={self.n_atoms})"

    ctx = context("lse")
    for N, d in ((16, 5000), (20_000_000, 2)):
        e = cost(ctx, Network("big", Sized(N, d)))
        assert e.bytes > 40 * 2**30, (N, d, e)
    budget, _ = memory_budget("8G")
    assert budget == 8 * 2**30


def test_the_diagram_counts_its_quadrature_grid_before_building_it():
    """The diagram's grid has (width / h)^d nodes: fine in d = 2, tens of GiB in d = 3, refused under an 8G budget."""
    from hjsym import ResourceError
    from hjsym._resources import require
    from hjsym.checks.api import context
    from hjsym.checks.engine import Network, estimate
    from tests.helpers import lse_module

    ctx = context("diagram")
    small, big = (estimate(ctx.suite, ctx, [Network("u", ctx.suite.read(ctx, lse_module(d, 8, 0.5)))]) for d in (2, 3))
    assert small.bytes < 2**30 < 10 * 2**30 < big.bytes
    with pytest.raises(ResourceError, match="quadrature grid"):
        require(big, "8G")


def test_memory_sizes_parse_and_bad_ones_are_input_errors():
    from hjsym import InputError
    from hjsym._resources import parse_size

    assert parse_size("8G") == 8 * 2**30 and parse_size("512MiB") == 512 * 2**20 and parse_size("1.5GB") == 1_500_000_000
    for bad in ("lots", "-1G", "0", "8Q"):
        with pytest.raises(InputError):
            parse_size(bad)


def test_experiments_are_estimated_before_they_run(capsys, tmp_path):
    from hjsym.experiments import EXPERIMENTS, get

    for name in EXPERIMENTS:
        quick, full = get(name).estimate(True), get(name).estimate(False)
        assert 0 < quick.bytes <= full.bytes and 0 < quick.flops <= full.flops, name
    _fails_with(capsys, ["experiment", "quadrature", "--quick", "--workers", "0", "--max-memory", "1K", "--out", str(tmp_path)],
                "experiment quadrature: the largest intermediate needs about", "--max-memory")


# ----------------------------------------------------------------------------- standard output and processes
def test_a_closed_stdout_ends_quietly():
    """``hjsym list | head -1`` after ``head`` has gone: every write fails with EPIPE; hjsym exits 0 without a word."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write
    try:
        proc = subprocess.run([sys.executable, "-m", "hjsym", "list"], stdout=write, stderr=subprocess.PIPE, env=env, cwd=ROOT,
                              timeout=120)
    finally:
        os.close(write)
    err = proc.stderr.decode()
    assert proc.returncode == 0 and err == "", err


KILL_SCRIPT = textwrap.dedent("""
    import sys, time
    from hjsym._workers import process_pool

    def nap(_):
        import os
        time.sleep(120)
        return os.getpid()

    if __name__ == "__main__":
        pool = process_pool(2, sys.argv[1])
        futures = [pool.submit(nap, k) for k in range(2)]
        time.sleep(600)
""")


def _children_of(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - out
        out |= frontier
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_workers_die_with_their_parent_killed_by_sigkill(tmp_path, method):
    """The parent of a pool (the pages' spawn pool, the experiments' forkserver pool) killed with kill -9: no survivors."""
    script = tmp_path / "parent.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, str(script), method], env=env, cwd=tmp_path)
    try:
        deadline = time.time() + 60
        kids = set()
        while time.time() < deadline:  # wait until both workers run
            kids = _children_of(parent.pid)
            workers = [k for k in kids if "from multiprocessing" in Path(f"/proc/{k}/cmdline").read_text(errors="ignore")
                       .replace("\0", " ")] if kids else []
            if len(workers) >= 2:
                break
            time.sleep(0.2)
        assert kids, "the pool never started"
        time.sleep(1.0)
        kids = _children_of(parent.pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        survivors = [k for k in kids if _alive(k)]
        assert not survivors, f"worker processes outlived their parent: {survivors}"
    finally:
        if parent.poll() is None:
            parent.kill()
        for k in _children_of(parent.pid):
            try:
                os.kill(k, signal.SIGKILL)
            except OSError:
                pass


def test_a_real_error_is_still_an_internal_error(capsys, monkeypatch):
    import hjsym._cli as cli

    def bug(args):
        raise ZeroDivisionError("a bug")

    monkeypatch.setitem(cli.COMMANDS, "list", bug)
    assert main(["list"]) == 3 and "internal error" in capsys.readouterr().err
    assert torch.get_default_dtype() == torch.float64


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")
def test_a_report_killed_while_computing_leaves_no_workers(tmp_path):
    """The audit's case: ``kill -9`` of ``hjsym report`` while its page workers compute."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HJSYM_CACHE_DIR": str(tmp_path / "cache"),
           "HJSYM_KEY_FILE": str(tmp_path / "key" / "cache-key")}
    parent = subprocess.Popen([sys.executable, "-m", "hjsym", "report", "lse", "softplus-mlp", "--jobs", "2", "--no-cache", "--out",
                               str(tmp_path / "out")], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, kids = time.time() + 120, set()
        while time.time() < deadline:
            kids = _children_of(parent.pid)
            if sum("multiprocessing.spawn" in Path(f"/proc/{k}/cmdline").read_text(errors="ignore") for k in kids if _alive(k)) >= 2:
                break
            time.sleep(0.5)
        time.sleep(2.0)  # the workers are computing
        kids = _children_of(parent.pid)
        assert kids, "no worker processes started"
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(k) for k in kids):
            time.sleep(0.2)
        assert not [k for k in kids if _alive(k)]
    finally:
        if parent.poll() is None:
            parent.kill()
