"""`bench`: build the harness for a target through PlatformIO, run it, check parity, measure, and
write one result per engine into reports/runs/ (bench/run.py); compare, report, and see the
results from real boards."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bench import baseline, boards, compare, layers, layers_m7, report, results, run, targets
from common import atomic, cli, engines, layout, remote, rtneural, table
from common.errors import SuiteError

PYTHON_ENGINES = ("torch", "torchscript", "onnxruntime")  # bench/peers.py; imported only when run
DEFAULT_THRESHOLD = 3.0  # percent: instruction counts repeat exactly; a real regression is larger


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("targets", help="list the targets and whether their toolchains are installed")
    sub.add_parser("engines", help="per target, which engines can run, and why not where one cannot")
    r = sub.add_parser("run", help="build, run and measure the harness on a target")
    r.add_argument(
        "--target", required=True, help="x86, aarch64, armv7, cortex-m7 (or a PlatformIO env name), or all of them"
    )
    r.add_argument(
        "--engine",
        "--backend",
        dest="engine",
        default=None,
        choices=[*engines.NAMES, "all"],
        help="generated, an RTNeural backend, or all (default: every engine available for the target)",
    )
    r.add_argument("--blocks", type=cli.count(1), default=1000, help="blocks measured (at most the target's limit)")
    r.add_argument("--warmup", type=cli.count(0), default=100)
    r.add_argument(
        "--cold",
        type=cli.count(0),
        default=100,
        help="blocks also measured cold, the caches evicted before each (Linux targets; 0: none)",
    )
    r.add_argument(
        "--block-size", type=cli.count(1, layout.MAX_BLOCK_SIZE), default=512, help="samples per audio block"
    )
    r.add_argument("--sample-rate", type=cli.count(1, 1 << 24), default=48000)
    r.add_argument("--models-dir", type=Path, default=layout.MODELS_DIR, help="exported models (default build/models)")
    r.add_argument("--out", type=Path, default=layout.RUNS_DIR, help="where result files go")
    r.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="PlatformIO build folders go under here, one per engine (default .pio/)",
    )
    r.add_argument("--no-callgrind", action="store_true", help="skip the instruction counts")
    on = r.add_argument_group("on a board (through labgrid: deploy over SSH, run there, bring the results back)")
    where = on.add_mutually_exclusive_group()
    where.add_argument("--device", metavar="USER@HOST[:PORT]", help="a board on the network")
    where.add_argument("--place", help="a labgrid place, acquired from the coordinator for the run")
    where.add_argument("--lg-env", type=Path, metavar="FILE", help="a labgrid environment file (its target 'main')")
    on.add_argument(
        "--coordinator",
        default=os.environ.get("LG_COORDINATOR", "127.0.0.1:20408"),
        help="the labgrid coordinator of --place (default: $LG_COORDINATOR or %(default)s)",
    )
    on.add_argument("--ssh-key", help="the private key to log in with (default: ssh's own)")
    on.add_argument(
        "--run-prefix",
        default="",
        help="what the program runs under on the board, for a board that emulates the target "
        "(e.g. 'qemu-aarch64 -cpu cortex-a72'); never for a real board",
    )
    on.add_argument(
        "--connect-timeout", type=float, default=remote.CONNECT_TIMEOUT, help="seconds (default %(default)s)"
    )
    on.add_argument(
        "--remote-dir", default=remote.REMOTE_ROOT, help="where programs go on the board (default: ~/%(default)s)"
    )
    rep = sub.add_parser("report", help="render reports/README.md, index.html and plots from saved results")
    rep.add_argument("runs", nargs="*", type=Path, default=[layout.RUNS_DIR], help="result files or folders")
    rep.add_argument("--out", type=Path, default=report.DEFAULT_OUT)
    rep.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="training histories, if any")
    rep.add_argument("--models-dir", type=Path, default=layout.MODELS_DIR, help="export validation, if any")
    rep.add_argument(
        "--peers", type=Path, default=layout.RUNS_DIR.parent / "peers", help="bench compare-engines comparisons, if any"
    )
    rep.add_argument(
        "--layers", type=Path, default=layers.OUT_DIR, help="bench layers results, the newest per target (if any)"
    )
    bo = sub.add_parser("boards", help="per real board: estimated time per block and whether the set fits")
    bo.add_argument("runs", nargs="*", type=Path, default=[layout.RUNS_DIR], help="result files or folders")
    bo.add_argument("--profiles", type=Path, default=boards.PATH, help="board profiles (default bench/boards.json)")
    bo.add_argument("--details", action="store_true", help="how each estimate comes about, and where each part goes")
    bo.add_argument(
        "--layers",
        nargs="?",
        const=layers.OUT_DIR,
        type=Path,
        metavar="FILE",
        help="per layer: each board's share of its CPU at 48 kHz from a counted layers result (default: the newest "
        "in reports/layers; a layers result given as RUNS does the same)",
    )
    c = sub.add_parser("compare", help="the regression gate: exit 1 when CURRENT is worse than BASELINE")
    c.add_argument("baseline", type=Path, help="a baseline (reports/baseline), or result files or folders")
    c.add_argument(
        "current", nargs="+", type=Path, help="result files or folders of them (bench run's and bench layers')"
    )
    c.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help="percent (default %(default)s)")
    c.add_argument("--markdown", type=Path, help="also write the table as markdown here (a PR comment, a CI summary)")
    ce = sub.add_parser("compare-engines", help="every engine, compiled and Python-side, in one run, with a roofline")
    ce.add_argument("--target", default="x86", help="the host (x86): the Python-side engines run here")
    ce.add_argument(
        "--python-engines",
        default=",".join(PYTHON_ENGINES),
        help=f"comma-separated, of {', '.join(PYTHON_ENGINES)} (or none)",
    )
    ce.add_argument("--blocks", type=cli.count(1), default=1000)
    ce.add_argument("--cold", type=cli.count(0), default=100)
    ce.add_argument("--models-dir", type=Path, default=layout.MODELS_DIR)
    ce.add_argument("--checkpoints", type=Path, default=layout.CHECKPOINTS, help="for the Python-side engines")
    ce.add_argument("--out", type=Path, default=layout.RUNS_DIR.parent / "peers", help="where the comparison goes")
    ce.add_argument("--runs", type=Path, default=layout.RUNS_DIR, help="where the compiled engines' results go")
    ce.add_argument("--quick", action="store_true", help="fewer pyperf processes and values: a smoke run")
    la = sub.add_parser(
        "layers", help="RTNeural's layer benchmark our way: every engine per layer, interleaved in one process"
    )
    la.add_argument(
        "--layers",
        action="append",
        metavar="TERMS",
        help="comma-separated kinds (gru, conv1d, tanh), names (lstm_16_in1) or globs (dense_*_in1); default: all",
    )
    la.add_argument("--seconds", type=float, default=5.0, help="audio per layer and engine (default %(default)s)")
    la.add_argument(
        "--rounds", type=cli.count(1), default=layers.ROUNDS, help="interleaved rounds, medians over them (default 15)"
    )
    la.add_argument("--set", type=Path, default=layers.SET_PATH, help="the layer set (default bench/layers.json)")
    la.add_argument("--work", type=Path, default=layers.WORK_DIR, help="models and builds (default build/layers)")
    la.add_argument("--out", type=Path, default=layers.OUT_DIR, help="where the result goes (default reports/layers)")
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
    b = sub.add_parser("baseline", help="the committed baseline the gate compares with")
    bsub = b.add_subparsers(dest="action", required=True)
    u = bsub.add_parser("update", help="replace the baseline's figures with the latest runs' (of each target/engine)")
    u.add_argument("runs", nargs="*", type=Path, default=[layout.RUNS_DIR])
    u.add_argument("--reason", required=True, help="why the baseline changes (recorded)")
    args = parser.parse_args(argv)
    if args.command == "report":
        return cli.guard(lambda: run_report(args))
    if args.command == "compare":
        return cli.guard(lambda: run_compare(args))
    if args.command == "boards":
        return cli.guard(lambda: run_boards(args))
    if args.command == "baseline":
        return cli.guard(lambda: run_baseline(args))
    if args.command == "layers":
        return cli.guard(lambda: run_layers(args))
    if args.command == "compare-engines":
        return cli.guard(lambda: run_lineup(args, ce))
    if args.command in ("targets", "engines"):
        return cli.guard(list_targets if args.command == "targets" else list_engines)
    saved: list[Path] = []
    return cli.guard(lambda: run.run(args, r, saved), lambda: interrupted(saved))


def interrupted(saved: list[Path]) -> str:
    kept = "".join(f"\n  kept {p}" for p in saved)
    return f"{len(saved)} result(s) saved; the run in progress was not saved{kept}"


def run_lineup(args, parser) -> int:
    """Compiled engines through the harness (results saved as by `bench run`), Python-side engines
    through pyperf, a roofline calibrated in the same run; one table, saved to --out."""
    from bench import lineup

    python_engines = [] if args.python_engines in ("", "none") else args.python_engines.split(",")
    for name in python_engines:
        if name not in PYTHON_ENGINES:
            parser.error(f"argument --python-engines: unknown engine {name!r}; choose from {', '.join(PYTHON_ENGINES)}")
    target = targets.get(args.target)
    if target.run != "native":
        raise SuiteError(
            f"compare-engines runs on the host, where the Python-side engines run: --target "
            f"{next(t.name for t in targets.load().values() if t.run == 'native')}"
        )
    saved: list[Path] = []
    run_args = argparse.Namespace(
        target=target.name,
        engine=None,
        blocks=args.blocks,
        warmup=100,
        cold=args.cold,
        block_size=512,
        sample_rate=48000,
        models_dir=args.models_dir,
        out=args.runs,
        build_dir=None,
        no_callgrind=False,
        device=None,
        place=None,
        lg_env=None,
    )
    code = run.run(run_args, parser, saved)
    doc, path = lineup.measure(
        target,
        [results.load(p) for p in saved],
        python_engines,
        args.models_dir,
        args.checkpoints,
        args.out,
        args.quick,
    )
    print(lineup.render(doc))
    print(f"saved {path}")
    return code or (0 if all(e["parity_ok"] for e in doc["engines"]) else 1)


def run_layers(args) -> int:
    """`bench layers`: timed on this machine (bench/layers.py) or counted under QEMU (bench/layers_m7.py)."""
    target = layers_m7.counted(args.target)
    return layers.run(args) if target is None else layers_m7.run(args, target)


def run_report(args) -> int:
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
    print("Estimates (ms per block, the whole set; ranges, not measurements) and memory fit per board")
    print(table.render(boards.rows(assessed), boards.HEAD))
    if args.details:
        for a in assessed:
            print(f"\n{a['board_name']} / {a['engine']} (from {a['result']}):")
            for e in a["estimates"]:
                print(f"  {e['model']}: {boards.span(e)} ms: {e['how']}")
            for p in a["fit"]["placed"]:
                print(f"  {p['part']}: {p['bytes']:,} bytes in {p['memory']}")
            for p in a["fit"]["unplaced"]:
                print(f"  {p['part']}: {p['bytes']:,} bytes fit nowhere ({p['role']})")
    return 0


def run_compare(args) -> int:
    base, _, w1 = compare.load_set([args.baseline])
    current, timings, w2 = compare.load_set(args.current)
    for w in w1 + w2:
        print(f"warning: {w}", file=sys.stderr)
    rows = compare.compare(base, current, args.threshold)
    print(compare.render(rows, timings, args.threshold))
    if args.markdown:
        atomic.write_text(args.markdown, compare.markdown(rows, timings, args.threshold))
    return 1 if compare.failed(rows) else 0


def run_baseline(args) -> int:
    figs, _, warnings, sources = compare.newest(args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not figs:
        raise SuiteError("no gated figures in these results (bench layers counts unless --no-callgrind)", args.runs[0])
    lines = baseline.update(figs, args.reason, sources)
    print("\n".join(lines) if lines else "no figure changed")
    print(f"baseline {baseline.PATH} updated: {args.reason}")
    return 0


def list_targets() -> int:
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


def list_engines() -> int:
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
