"""`bench`: build the harness for a target through PlatformIO, run it, check parity, measure, and
write one result per engine into reports/runs/ (bench/run.py); compare, report, and see the
results from real boards."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench import baseline, boards, compare, layers, layers_m7, report, results, run, targets, trackers
from common import atomic, cli, engines, layout, rtneural, table
from common.errors import SuiteError

PYTHON_ENGINES = ("torch", "torchscript", "onnxruntime")  # bench/peers.py; imported only when run
PEERS_DIR = layout.RUNS_DIR.parent / "peers"  # bench compare-engines' comparisons
RUNS = "RUNS"  # the metavar of result files or folders
# Bounds of the flags that take a number of seconds or rounds, so that a slip of the keyboard is
# refused at once rather than running for hours: an SSH login that takes longer than a minute is
# not coming; bench layers' --seconds as bench/layers.py checks it (ten minutes of audio per layer
# and engine), and rounds beyond 1000 narrow its medians no further than 15 do.
MAX_CONNECT_TIMEOUT = 60.0
LAYERS_MAX_SECONDS = 600.0
LAYERS_MAX_ROUNDS = 1000
MAX_THRESHOLD = 1000.0  # percent: a tenfold change; a looser gate would pass any real regression
REPORT_INPUTS = ("checkpoints", "models_dir", "peers", "layers")  # bench report's folders read besides RUNS


def create_parser() -> argparse.ArgumentParser:
    """`bench` and its subcommands, each added by its own function."""
    parser = cli.parser("bench", __doc__)
    sub = cli.commands(parser)
    for add in (
        add_targets,
        add_engines,
        add_run,
        add_report,
        add_boards,
        add_compare,
        add_compare_engines,
        add_layers,
        add_export,
        add_baseline,
    ):
        add(sub)
    return parser


def main(argv=None) -> int:
    return cli.main(create_parser(), argv)


def add_runs(p: argparse.ArgumentParser, help: str = "result files or folders of them") -> None:
    p.add_argument("runs", nargs="*", type=Path, default=[layout.RUNS_DIR], metavar=RUNS, help=help)


def add_targets(sub) -> None:
    cli.command(sub, "targets", list_targets, "list the targets and whether their toolchains are installed")


def add_engines(sub) -> None:
    cli.command(sub, "engines", list_engines, "per target, which engines can run, and why not where one cannot")


def add_measured(p: argparse.ArgumentParser) -> None:
    """What `bench run` and `bench compare-engines` measure alike: which models, how many blocks,
    and where the builds go."""
    d = run.DEFAULTS
    p.add_argument(
        "--models",
        default=layout.ALL,
        metavar="NAME[,NAME]",
        help="the models of the export to build the harness with (its own table of them), or all",
    )
    p.add_argument("--blocks", type=cli.count(1), default=d.blocks, help="blocks measured (at most the target's limit)")
    p.add_argument(
        "--cold",
        type=cli.count(0),
        default=d.cold,
        help="blocks also measured cold, the caches evicted before each (Linux targets; 0: none)",
    )
    p.add_argument("--models-dir", type=Path, default=d.models_dir, help="the exported models")
    p.add_argument(
        "--build-dir", type=Path, help="PlatformIO build folders go under here, one per engine (default: .pio/)"
    )


def add_run(sub) -> None:
    d = run.DEFAULTS
    r = cli.command(sub, "run", command_run, "build, run and measure the harness on a target")
    r.add_argument(
        "--target", required=True, help="x86, aarch64, armv7, cortex-m7 (or a PlatformIO env name), or all of them"
    )
    r.add_argument(
        "--engine",
        "--backend",
        dest="engine",
        choices=[*engines.NAMES, "all"],
        help="generated, an RTNeural backend, or all (default: every engine available for the target)",
    )
    add_measured(r)
    r.add_argument("--warmup", type=cli.count(0), default=d.warmup, help="blocks run before the measured ones")
    r.add_argument(
        "--block-size", type=cli.count(1, layout.MAX_BLOCK_SIZE), default=d.block_size, help="samples per audio block"
    )
    r.add_argument("--sample-rate", type=cli.count(1, 1 << 24), default=d.sample_rate, help="Hz")
    r.add_argument("--out", type=Path, default=d.out, help="where result files go")
    r.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    on = r.add_argument_group("on a board (through labgrid: deploy over SSH, run there, bring the results back)")
    where = on.add_mutually_exclusive_group()
    where.add_argument(
        "--device",
        metavar="USER@HOST[:PORT]|ALIAS",
        help="a board on the network: as ssh takes it, or an alias of the SSH config (its host, user, port, key)",
    )
    where.add_argument("--place", help="a labgrid place, acquired from the coordinator for the run")
    where.add_argument("--lg-env", type=Path, metavar="FILE", help="a labgrid environment file (its target 'main')")
    on.add_argument(
        "--coordinator", default=d.coordinator, help="the labgrid coordinator of --place ($LG_COORDINATOR when set)"
    )
    on.add_argument("--ssh-key", metavar="FILE", help="the private key to log in with (default: ssh's own)")
    on.add_argument(
        "--ssh-config", type=Path, metavar="FILE", help="the SSH config a --device alias is read from (default: ssh's)"
    )
    on.add_argument(
        "--run-prefix",
        default=d.run_prefix,
        help="what the program runs under on the board, for a board that emulates the target "
        "(e.g. 'qemu-aarch64 -cpu cortex-a72'); never for a real board",
    )
    on.add_argument(
        "--connect-timeout",
        type=cli.number(0, MAX_CONNECT_TIMEOUT, above=True),
        default=d.connect_timeout,
        help="seconds",
    )
    on.add_argument("--remote-dir", default=d.remote_dir, help="where programs go on the board (in the login's home)")


def interrupted(saved: list[Path]) -> str:
    kept = "".join(f"\n  kept {p}" for p in saved)
    return f"{len(saved)} result(s) saved; the run in progress was not saved{kept}"


def command_run(args) -> int:
    saved: list[Path] = []
    with cli.keeping(lambda: interrupted(saved)):
        return run.run(run.Options.from_args(args), saved)


def add_report(sub) -> None:
    rep = cli.command(sub, "report", run_report, "render reports/README.md, index.html and plots from saved results")
    add_runs(rep)
    rep.add_argument("--out", type=Path, default=report.DEFAULT_OUT, help="where the report goes")
    rep.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="training histories, if any")
    rep.add_argument("--models-dir", type=Path, default=layout.MODELS_DIR, help="export validation, if any")
    rep.add_argument("--peers", type=Path, default=PEERS_DIR, help="bench compare-engines comparisons, if any")
    rep.add_argument("--layers", type=Path, default=layers.OUT_DIR, help="bench layers results, the newest per target")


def add_boards(sub) -> None:
    bo = cli.command(sub, "boards", run_boards, "per real board: estimated time per block and whether the set fits")
    add_runs(bo)
    bo.add_argument("--profiles", type=Path, default=boards.PATH, help="board profiles")
    bo.add_argument("--details", action="store_true", help="how each estimate comes about, and where each part goes")
    bo.add_argument(
        "--layers",
        nargs="?",
        const=layers.OUT_DIR,
        type=Path,
        metavar="FILE",
        help="per layer: each board's share of its CPU at 48 kHz from a counted layers result (without FILE: the "
        "newest in reports/layers; a layers result given as RUNS does the same)",
    )


def add_compare(sub) -> None:
    c = cli.command(sub, "compare", run_compare, "the regression gate: exit 1 when CURRENT is worse than BASELINE")
    c.add_argument("baseline", type=Path, help="a baseline (reports/baseline), or result files or folders")
    c.add_argument(
        "current", nargs="+", type=Path, help="result files or folders of them (bench run's and bench layers')"
    )
    c.add_argument(
        "--threshold",
        type=cli.number(0, MAX_THRESHOLD),
        default=compare.DEFAULT_THRESHOLD,
        help="percent (0: any change in a figure that repeats exactly is one)",
    )
    c.add_argument(
        "--markdown", type=Path, metavar="FILE", help="also write the table as markdown here (a PR comment, CI summary)"
    )
    c.add_argument(
        "--junit",
        type=Path,
        metavar="FILE",
        help="also write the gate as JUnit XML here, a test case per figure (whether it passes or fails)",
    )


def add_compare_engines(sub) -> None:
    ce = cli.command(
        sub, "compare-engines", run_lineup, "every engine, compiled and Python-side, in one run, with a roofline"
    )
    ce.add_argument("--target", default="x86", help="the host (x86): the Python-side engines run here")
    ce.add_argument(
        "--python-engines",
        default=",".join(PYTHON_ENGINES),
        help=f"comma-separated, of {', '.join(PYTHON_ENGINES)} (or none)",
    )
    add_measured(ce)
    ce.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="for the Python-side engines")
    ce.add_argument("--out", type=Path, default=PEERS_DIR, help="where the comparison goes")
    ce.add_argument("--runs", type=Path, default=layout.RUNS_DIR, help="where the compiled engines' results go")
    ce.add_argument("--quick", action="store_true", help="fewer pyperf processes and values: a smoke run")


def run_lineup(args) -> int:
    """Compiled engines through the harness (results saved as by `bench run`), Python-side engines
    through pyperf, a roofline calibrated in the same run; one table, saved to --out."""
    from bench import lineup

    python_engines = [] if args.python_engines in ("", "none") else args.python_engines.split(",")
    for name in python_engines:
        if name not in PYTHON_ENGINES:
            raise cli.UsageError(
                f"argument --python-engines: unknown engine {name!r}; choose from {', '.join(PYTHON_ENGINES)}"
            )
    target = targets.get(args.target)
    if target.run != "native":
        raise SuiteError(
            f"compare-engines runs on the host, where the Python-side engines run: --target "
            f"{next(t.name for t in targets.load().values() if t.run == 'native')}"
        )
    options = run.Options(
        target=target.name,
        models=cli.model_names(args.models),
        blocks=args.blocks,
        cold=args.cold,
        models_dir=args.models_dir,
        out=args.runs,
        build_dir=args.build_dir,
    )
    run.check(options)
    options = run.with_picked(options)  # the Python-side engines run the same models as the harness
    saved: list[Path] = []
    with cli.keeping(lambda: interrupted(saved)):
        code = run.run(options, saved)
        doc, path = lineup.measure(
            target,
            [results.load(p) for p in saved],
            python_engines,
            options.models_dir,
            args.checkpoints,
            args.out,
            args.quick,
        )
    print(lineup.render(doc))
    print(f"saved {path}")
    return code or (0 if all(e["parity_ok"] for e in doc["engines"]) else 1)


def add_layers(sub) -> None:
    what = "RTNeural's layer benchmark our way: every engine per layer, interleaved in one process"
    la = cli.command(sub, "layers", run_layers, what)
    la.add_argument(
        "--layers",
        action="append",
        metavar="TERMS",
        help="comma-separated kinds (gru, conv1d, tanh), names (lstm_16_in1) or globs (dense_*_in1); default: all",
    )
    la.add_argument(
        "--seconds",
        type=cli.number(0, LAYERS_MAX_SECONDS, above=True),
        default=5.0,
        help="audio per layer and engine",
    )
    la.add_argument(
        "--rounds",
        type=cli.count(1, LAYERS_MAX_ROUNDS),
        default=layers.ROUNDS,
        help="interleaved rounds, medians over them",
    )
    la.add_argument("--set", type=Path, default=layers.SET_PATH, help="the layer set")
    la.add_argument("--work", type=Path, default=layers.WORK_DIR, help="models and builds")
    la.add_argument("--out", type=Path, default=layers.OUT_DIR, help="where the result goes")
    la.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    la.add_argument(
        "--no-rtneural-bench",
        action="store_true",
        help="skip RTNeural's own bench/layer_bench.cpp, else run beside ours where RTNeural is found",
    )
    la.add_argument(
        "--target",
        default="x86",
        help="x86 (this machine, timed) or cortex-m7 (instructions counted under QEMU -icount; "
        "--seconds, --rounds and --no-callgrind do not apply)",
    )


def add_export(sub) -> None:
    ex = cli.command(sub, "export", run_export, "results in a format the field's trackers read")
    add_runs(ex)
    ex.add_argument("--format", required=True, choices=trackers.FORMATS, help="the tracker's format")
    ex.add_argument("--out", type=Path, metavar="FILE", help="write it here (default: standard output)")


def run_export(args) -> int:
    cli.refuse_overwrite([("--out", args.out)], [(RUNS, p) for p in args.runs])
    docs, warnings = results.load_many(args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not docs:
        raise SuiteError("no result files to export", args.runs[0])
    text = trackers.export(docs, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        atomic.write_text(args.out, text)
        print(f"wrote {args.out} ({args.format}, {len(docs)} result(s))", file=sys.stderr)
    return 0


def add_baseline(sub) -> None:
    actions = cli.group(sub, "baseline", "the committed baseline the gate compares with", "action")
    u = cli.command(
        actions, "update", run_baseline, "replace the baseline's figures with the latest runs' (of each target/engine)"
    )
    add_runs(u)
    u.add_argument("--reason", required=True, help="why the baseline changes (recorded)")
    u.add_argument(
        baseline.ACCEPT[baseline.FAILING],
        dest=f"accept_{baseline.FAILING}",
        action="store_true",
        help="take runs whose parity failed or that hold a figure that is not a number (recorded in the reason)",
    )
    u.add_argument(
        baseline.ACCEPT[baseline.PARTIAL],
        dest=f"accept_{baseline.PARTIAL}",
        action="store_true",
        help="take runs that lack figures the baseline has for their target and engine, dropping those "
        "(recorded in the reason)",
    )


def run_layers(args) -> int:
    """`bench layers`: timed on this machine (bench/layers.py) or counted under QEMU (bench/layers_m7.py)."""
    target = layers_m7.counted(args.target)
    # --work is bench layers' own (its models and builds are made anew there): never the layer set or
    # the results' folder
    cli.refuse_overwrite([("--work", args.work), ("--out", args.out)], [("--set", args.set)])
    return layers.run(args) if target is None else layers_m7.run(args, target)


def run_report(args) -> int:
    inputs = [(RUNS, p) for p in args.runs]
    inputs += [(f"--{flag.replace('_', '-')}", getattr(args, flag)) for flag in REPORT_INPUTS]
    cli.refuse_overwrite([("--out", args.out / name) for name in report.WRITES], inputs)
    written, warnings = report.render(args.runs, args.out, args.checkpoints, args.models_dir, args.peers, args.layers)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    return 0


def run_boards(args) -> int:
    """The latest result of each target and engine, seen from each board that runs the target; or a
    counted layers result's per-sample figures."""
    source = args.layers or boards.layers_file(args.runs)
    if source is not None:
        doc, path, warnings = boards.counted_layers(source)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        print(boards.render_layers(doc, path, boards.load(args.profiles)))
        return 0
    docs, warnings = results.load_many(args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    assessed = boards.assess(docs, boards.load(args.profiles))
    if not assessed:
        raise SuiteError(
            "no result of a target a board runs (bench run --target aarch64, armv7 or cortex-m7)", args.runs[0]
        )
    print(boards.render(assessed, args.details))
    return 0


def run_compare(args) -> int:
    inputs = [("BASELINE", args.baseline), *(("CURRENT", p) for p in args.current)]
    cli.refuse_overwrite([("--markdown", args.markdown), ("--junit", args.junit)], inputs)
    base, _, w1 = compare.load_set([args.baseline])
    current, timings, w2 = compare.load_set(args.current)
    for w in w1 + w2:
        print(f"warning: {w}", file=sys.stderr)
    rows = compare.compare(base, current, args.threshold)
    print(compare.render(rows, timings, args.threshold))
    if args.markdown:
        atomic.write_text(args.markdown, compare.markdown(rows, timings, args.threshold))
    if args.junit:  # a failing gate is what a test reporter most needs to see
        atomic.write_text(args.junit, trackers.junit(rows, args.threshold))
    return 1 if compare.failed(rows) else 0


def run_baseline(args) -> int:
    cli.refuse_overwrite([("the baseline", baseline.PATH)], [(RUNS, p) for p in args.runs])
    figs, _, warnings, sources = compare.newest(args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not figs:
        raise SuiteError("no gated figures in these results (bench layers counts unless --no-callgrind)", args.runs[0])
    accept = {kind for kind in baseline.ACCEPT if getattr(args, f"accept_{kind}")}
    lines = baseline.update(figs, args.reason, sources, accept=accept, runs=args.runs)
    print("\n".join(lines) if lines else "no figure changed")
    _, doc = baseline.load(baseline.PATH)
    print(f"baseline {baseline.PATH} updated: {doc['reason']}")
    return 0


def list_targets(_args=None) -> int:
    found = rtneural.find()
    rows = []
    for t in targets.load().values():
        missing = t.missing()
        rows.append(
            (
                t.name,
                t.env,
                t.board,
                t.run,
                " ".join(t.engines),
                "ok" if not missing else "missing " + ", ".join(missing),
            )
        )
    print(table.render(rows, ("target", "env", "board", "runs", "engines", "toolchain")))
    print(rtneural_line(found))
    return 0


def rtneural_line(found) -> str:
    if found is None:
        return f"RTNeural: not found ({rtneural.SETUP_HINT}); the generated engine needs nothing"
    return f"RTNeural: {found.root} (commit {found.commit}; pinned {rtneural.PIN})"


def list_engines(_args=None) -> int:
    """Per target, each engine and whether it can run there now, and if not, why."""
    rows = []
    for t in targets.load().values():
        missing = t.missing()
        for engine in engines.NAMES:
            why = "; ".join(missing) or engines.available(engine)
            if why is None and engine not in t.engines:
                why = f"not validated on {t.name} (custom_engines in platformio.ini)"
            rows.append((t.name, engine, "yes" if why is None else "no", why or ""))
    print(table.render(rows, ("target", "engine", "available", "why not")))
    print(rtneural_line(rtneural.find()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
