"""The ``hjsym`` command line.

Exit codes: 0 success (for ``check``: every check passed, and every control asked for failed),
1 a check failed, 2 a fault of the input or of the environment (unknown architecture, bad option
value, missing file, malformed module or spec, a module that raises or exits while imported, a
path that cannot be written, a full disk, a missing optional dependency, an unreachable
scheduler, a computation above the memory budget), 3 an internal error (a bug: the traceback is
wanted). Errors print one line naming the problem and the fix; ``--debug`` adds the traceback.
A closed standard output (``hjsym derive lse | head -1``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import sys

from pathlib import Path

from ._errors import HJSymError, OutputError

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own errors: one line, exit 2
        self.print_usage(sys.stderr)
        sys.stderr.write(f"hjsym: error: {message}; see '{self.prog} --help'\n")
        raise SystemExit(EXIT_BAD_INPUT)


#: Examples shown at the end of each subcommand's --help.
EXAMPLES = {
    "list": "hjsym list\n  hjsym list --json",
    "derive": "hjsym derive lse                    # the steps as Unicode mathematics\n"
              "  hjsym derive gru --format latex     # a LaTeX fragment with labelled equations\n"
              "  hjsym derive lse --format markdown  # for a notebook",
    "check": "hjsym check lse\n  hjsym check lse --negative-controls   # also every check on a perturbed network (must fail)\n"
             "  hjsym check gru --module my_net.py:model --dtype float32\n  hjsym check lse --only identity hessian --json",
    "report": "hjsym report lse                      # reports/lse/index.html and reports/index.html\n"
              "  hjsym report all --format html,tex,pdf\n  hjsym report gru attention --out /tmp/pages --verbose",
    "verify": "hjsym verify reports\n  hjsym verify reports --artifacts test-artifacts/verify --no-tex",
    "bench": "hjsym bench --quick\n  hjsym bench --only costate_resnet --json",
    "experiment": "hjsym experiment quadrature --quick    # seconds: a smoke run, not the measurement\n"
                  "  hjsym experiment all --out reports\n  hjsym experiment influence --json",
}


def _output_options(parser) -> None:
    g = parser.add_mutually_exclusive_group()
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="print only the essential line(s)")
    g.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="print everything (e.g. every file written)")


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__
    from .experiments import EXPERIMENTS

    p = _Parser(prog="hjsym", description="Which Hamilton-Jacobi equation does a network solve? Derive, check, report.",
                epilog="examples:\n  hjsym derive lse\n  hjsym check lse --negative-controls\n  hjsym report all\n\n"
                       "'hjsym COMMAND --help' shows each command's options and examples. Colour only on a terminal "
                       "(NO_COLOR turns it off).", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"hjsym {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    _output_options(p)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add = sub.add_parser

    def add_parser(name, **kw):
        s = add(name, epilog="examples:\n  " + EXAMPLES[name], formatter_class=argparse.RawDescriptionHelpFormatter, **kw)
        _output_options(s)
        return s

    sub.add_parser = add_parser

    s = sub.add_parser("list", help="list the architectures hjsym can derive and check")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = sub.add_parser("derive", help="derive an architecture and print the steps")
    s.add_argument("arch", help="architecture name (see 'hjsym list') or a spec file PATH.py defining SPEC or ARCHITECTURE")
    s.add_argument("--format", choices=("text", "latex", "markdown", "json"), default="text",
                   help="text (default), latex or markdown (fragments with labelled equations), json")
    s.add_argument("--no-cache", action="store_true", help="derive afresh instead of using the disk cache")

    s = sub.add_parser("check", help="check a derivation against real torch networks")
    s.add_argument("arch", help="architecture name (see 'hjsym list') or a spec file PATH.py defining SPEC or ARCHITECTURE")
    s.add_argument("--module", metavar="FILE.py:NAME", help="check your own module (an instance or a zero-argument factory)")
    s.add_argument("--forward-kwargs", metavar="JSON", type=_json_object,
                   help="extra keyword arguments of the module's forward, as a JSON object (e.g. '{\"scale\": 2.0}')")
    s.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--only", nargs="+", metavar="CHECK", help="run only these checks")
    s.add_argument("--negative-controls", action="store_true", help="also run every check on a perturbed network (must fail)")
    s.add_argument("--formula-controls", action="store_true",
                   help="also run every check with its derived formula mutated (route B moved; must fail)")
    s.add_argument("--max-memory", metavar="SIZE", help="memory budget, e.g. 8G (default: $HJSYM_MAX_MEMORY or half the free memory)")
    s.add_argument("--json", action="store_true", help="print the results as JSON")

    s = sub.add_parser("report", help="derive, check and write HTML/LaTeX reports")
    s.add_argument("archs", nargs="*", default=["all"], help="architecture names or spec files PATH.py, or 'all' (default)")
    s.add_argument("--out", default="reports", help="output folder (default: reports)")
    s.add_argument("--format", default="html,tex", help="comma-separated subset of html,tex,pdf (default: html,tex)")
    s.add_argument("--seed", type=_seed, default=0)
    s.add_argument("--jobs", type=_positive_int, default=None, help="worker processes for pages not in the cache (default: CPUs)")
    s.add_argument("--no-cache", action="store_true", help="derive, check and draw afresh instead of reusing cached pages")

    s = sub.add_parser("verify", help="compile every .tex and open every .html of a report folder in headless Chromium")
    s.add_argument("out", nargs="?", default="reports", help="report folder (default: reports)")
    s.add_argument("--artifacts", metavar="DIR", help="save a screenshot of every page and the logs here")
    s.add_argument("--no-tex", action="store_true", help="skip compiling the LaTeX")
    s.add_argument("--no-browser", action="store_true", help="skip the browser")
    s.add_argument("--json", action="store_true", help="print the findings as JSON")

    s = sub.add_parser("bench", help="run the benchmarks (ratios against baselines measured in the same run)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--quick", action="store_true", help="small sizes (seconds; for smoke tests)")
    s.add_argument("--only", nargs="+", metavar="NAME", help="run only these benchmarks")

    s = sub.add_parser("experiment", help="run the paper's quantitative claims as experiments (claim, measurement with CI, verdict)")
    s.add_argument("names", nargs="+", metavar="NAME", help=f"experiment names ({', '.join(EXPERIMENTS)}) or 'all'")
    s.add_argument("--quick", action="store_true", help="small settings (seconds; a smoke run, not the measurement)")
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.add_argument("--out", default="reports", help="output folder; pages go to OUT/NAME/ (default: reports)")
    s.add_argument("--scheduler", metavar="ADDRESS", help="run the sweeps on a Dask cluster (needs hjsym[dask])")
    s.add_argument("--workers", type=_non_negative_int, help="local worker processes (default: CPU count; 0: in this process)")
    s.add_argument("--max-memory", metavar="SIZE", help="memory budget, e.g. 8G (default: $HJSYM_MAX_MEMORY or half the free memory)")
    return p


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _seed(text: str) -> int:
    from .networks.training import MAX_SEED

    value = _non_negative_int(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"{value} is larger than the largest seed {MAX_SEED}")
    return value


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object of keyword arguments")
    return value


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _cmd_list(args) -> int:
    from .checks.api import list_architectures

    rows = list_architectures()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        width = max(len(r["name"]) for r in rows)
        family = max(len(r["family"]) for r in rows)
        for r in rows:
            print(f"{r['name'].ljust(width)}  {r['family'].ljust(family)} {r['title']}")
    return EXIT_OK


def _width() -> int:
    """Columns to wrap to: the terminal's width on a terminal, 100 otherwise."""
    if sys.stdout.isatty():
        return max(40, shutil.get_terminal_size((100, 24)).columns)
    return 100


def _colour(text: str, ok: bool) -> str:
    """Green/red on a terminal that allows colour (not with NO_COLOR or a dumb terminal); unchanged otherwise."""
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return text
    return f"\033[{32 if ok else 31}m{text}\033[0m"


def _level(args) -> int:
    """-1 quiet, 0 normal, 1 verbose."""
    return -1 if getattr(args, "quiet", False) else (1 if getattr(args, "verbose", False) else 0)


def _cmd_derive(args) -> int:
    from .codegen.pipeline import derive

    d = derive(args.arch, cache=not args.no_cache)
    if args.format == "text" and _level(args) < 0:
        c = d.classification
        print(f"{d.name}: {len(d.steps)} steps, {c.kind}")
        return EXIT_OK
    if args.format == "json":
        print(json.dumps(d.to_dict(), indent=2))
    elif args.format == "latex":
        from .reports.pages import latex_fragment

        print(latex_fragment(d), end="")
    elif args.format == "markdown":
        from .reports.pages import markdown_fragment

        print(markdown_fragment(d), end="")
    else:
        print(d.text(_width()))
    return EXIT_OK


def _cmd_check(args) -> int:
    from .checks.api import check

    report = check(
        args.arch,
        module=args.module,
        dtype=args.dtype,
        seed=args.seed,
        only=args.only,
        negative_controls=args.negative_controls,
        formula_controls=args.formula_controls,
        progress=sys.stderr.isatty() and not args.json,
        max_memory=args.max_memory,
        forward_kwargs=args.forward_kwargs,
    )
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    elif _level(args) < 0:
        failed = [c.name for c in report.checks if not c.passed]
        print(f"{report.architecture}: {len(report.checks) - len(failed)}/{len(report.checks)} checks pass"
              + (f"; failed: {', '.join(failed)}" if failed else ""))
    else:
        table = report.table(controls=True if args.negative_controls else None, width=_width())
        print("\n".join(_colour_verdicts(line) for line in table.splitlines()))
    uncaught = report.uncaught_controls
    if uncaught:
        sys.stderr.write(f"hjsym: {len(uncaught)} control(s) passed where they must fail: {', '.join(uncaught)}\n")
    return EXIT_OK if report.passed and not uncaught else EXIT_FAILED


def _colour_verdicts(line: str) -> str:
    """Colour the verdict words of a table line (a no-op off a terminal)."""
    for word, ok in ((" pass ", True), (" FAIL ", False), ("DID NOT FAIL", False)):
        if word in line + " ":
            return (line + " ").replace(word, _colour(word.strip(), ok).join(" " * 2) if word.startswith(" ") else _colour(word, ok),
                                        1).rstrip()
    return line


def _cmd_report(args) -> int:
    from .reports.pages import report

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = report(args.archs, out=args.out, formats=formats, seed=args.seed, progress=sys.stderr.isatty() and _level(args) >= 0,
                     jobs=args.jobs, cache=not args.no_cache)
    index = next((p for p in written if p.name == "index.html" and p.parent == Path(args.out)), Path(args.out) / "index.html")
    if _level(args) > 0:
        for path in written:
            print(path)
    if _level(args) >= 0:
        pages = sorted({p.parent.name for p in written if p.parent != Path(args.out)})
        kinds = {}
        for p in written:
            kinds[p.suffix or p.name] = kinds.get(p.suffix or p.name, 0) + 1
        print(f"wrote {len(written)} files for {len(pages)} page{'s' * (len(pages) != 1)} ({', '.join(pages)}) into {args.out}/: "
              + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ("; --verbose lists them" if _level(args) == 0 else ""))
        pdf = Path(args.out) / "hjsym.pdf"
        if pdf in written:
            print(f"everything in one PDF: {pdf}")
    print(f"open {index}")
    return EXIT_OK


def _cmd_verify(args) -> int:
    from .verify.reports import verify_reports

    result = verify_reports(args.out, artifacts=args.artifacts, tex=not args.no_tex, browser=not args.no_browser,
                            progress=sys.stderr.isatty() and not args.json)
    print(json.dumps(result.to_dict(), indent=2) if args.json else result.text())
    return EXIT_OK if result.ok else EXIT_FAILED


def _cmd_bench(args) -> int:
    from ._bench import run_benchmarks

    results = run_benchmarks(quick=args.quick, only=args.only, progress=sys.stderr.isatty() and not args.json)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        from ._bench import format_table

        print(format_table(results))
    return EXIT_OK if all(r.get("passed", True) for r in results["benchmarks"]) else EXIT_FAILED


def _cmd_experiment(args) -> int:
    from .experiments import run_experiments
    from .experiments._page import jsonable

    results = run_experiments(args.names, quick=args.quick, out=args.out, workers=args.workers, scheduler=args.scheduler,
                              progress=sys.stderr.isatty() and not args.json, max_memory=args.max_memory)
    if args.json:
        keys = ("name", "title", "claim", "measurement", "verdict", "verdict_reason", "falsifiable", "rows", "config", "seeds", "timings",
                "quick")
        print(json.dumps(jsonable([{k: r[k] for k in keys} for r in results]), indent=2))
    else:
        print(_experiment_table(results, _width(), _level(args)))
        if _level(args) >= 0:
            print(f"pages: {args.out}/<name>/index.html; open {args.out}/index.html")
    return EXIT_OK


def _experiment_table(results, width: int, level: int) -> str:
    """One row per experiment (name, verdict, run mode, wall and CPU seconds); the measurement below it unless quiet."""
    import textwrap

    from .symbolic.prose import to_text

    rows = [("experiment", "verdict", "run", "seconds", "CPU seconds")]
    rows += [(r["name"], r["verdict"], "quick" if r.get("quick") else "full", f"{r['timings']['total_s']:.1f}",
              f"{r['timings']['cpu_s']:.1f}" if "cpu_s" in r["timings"] else "-") for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
        elif level >= 0:
            out += textwrap.wrap(to_text(results[n - 1]["measurement"]), width, initial_indent="    ", subsequent_indent="    ",
                                 break_long_words=False)
    if any(r.get("quick") for r in results):
        out.append("quick runs are smoke tests (few seeds, small sizes): their verdicts are not findings")
    return "\n".join(out)


COMMANDS = {"list": _cmd_list, "derive": _cmd_derive, "check": _cmd_check, "report": _cmd_report, "verify": _cmd_verify,
            "bench": _cmd_bench, "experiment": _cmd_experiment}


def _environment_fault(exc: BaseException) -> HJSymError | None:
    """The user's or the environment's fault behind an exception that is not an :class:`HJSymError`, as one."""
    if isinstance(exc, OSError) and exc.errno is not None:
        where = exc.filename or "a file"
        if exc.errno in (errno.ENOENT, errno.ENOTDIR) and exc.filename:
            return HJSymError(f"{where}: {exc.strerror}", "check the path")
        return OutputError.of(where, exc)
    if isinstance(exc, MemoryError):
        return HJSymError("out of memory", "free memory, check a smaller module or run fewer workers (--jobs, --workers)")
    if isinstance(exc, ImportError):
        name = getattr(exc, "name", None) or str(exc)
        return HJSymError(f"a dependency cannot be imported ({exc})",
                          f"install it (pip install {name.split('.')[0]}) or rerun bash scripts/setup.sh")
    return None


def _quiet_stdout() -> None:
    """The reader of stdout went away (a pipe into ``head``): send the rest nowhere, so nothing more fails."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_OK
    except HJSymError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"hjsym: error: {exc.problem}; fix: {exc.fix}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("hjsym: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - last resort: one line, no traceback unless --debug
        if args.debug:
            raise
        fault = _environment_fault(exc)
        if fault is not None:
            sys.stderr.write(f"hjsym: error: {fault.problem}; fix: {fault.fix}\n")
            return EXIT_BAD_INPUT
        sys.stderr.write(f"hjsym: internal error: {type(exc).__name__}: {exc}; fix: rerun with --debug and report the traceback\n")
        return EXIT_INTERNAL


def entry() -> None:
    """Console-script entry point."""
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # the reader left after the last line
        _quiet_stdout()
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()

