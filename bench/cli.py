"""`bench`: build the harness for a target through PlatformIO, run it, check parity, measure, and
write one result per backend into reports/runs/."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tqdm import tqdm

from bench import baseline, callgrind, compare, figures, harness, report, results, targets
from bench.build import build
from common import atomic, cli, engines, layout, manifest, remote, rtneural, table
from common.errors import SuiteError
from common.git import project_commit

PYTHON_ENGINES = ("torch", "torchscript", "onnxruntime")  # bench/peers.py; imported only when run
DEFAULT_THRESHOLD = 3.0  # percent: instruction counts repeat exactly; a real regression is larger


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("targets", help="list the targets and whether their toolchains are installed")
    sub.add_parser("engines", help="per target, which engines can run, and why not where one cannot")
    r = sub.add_parser("run", help="build, run and measure the harness on a target")
    r.add_argument("--target", required=True, help="x86, aarch64, armv7, cortex-m7 (or a PlatformIO env name)")
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
    r.add_argument("--block-size", type=cli.count(1, 1 << 20), default=512, help="samples per audio block")
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
    c = sub.add_parser("compare", help="the regression gate: exit 1 when CURRENT is worse than BASELINE")
    c.add_argument("baseline", type=Path, help="a baseline (reports/baseline), or result files or folders")
    c.add_argument("current", type=Path, help="result files or a folder of them")
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
    if args.command == "baseline":
        return cli.guard(lambda: run_baseline(args))
    if args.command == "compare-engines":
        return cli.guard(lambda: run_lineup(args, ce))
    if args.command in ("targets", "engines"):
        return cli.guard(list_targets if args.command == "targets" else list_engines)
    saved: list[Path] = []
    return cli.guard(lambda: run(args, r, saved), lambda: interrupted(saved))


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
    )
    code = run(run_args, parser, saved)
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


def run_report(args) -> int:
    written, warnings = report.render(args.runs, args.out, args.checkpoints, args.models_dir, args.peers)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for path in written:
        print(f"wrote {path}")
    return 0


def run_compare(args) -> int:
    base, _, w1 = compare.load_set(args.baseline)
    current, timings, w2 = compare.load_set(args.current)
    for w in w1 + w2:
        print(f"warning: {w}", file=sys.stderr)
    rows = compare.compare(base, current, args.threshold)
    print(compare.render(rows, timings, args.threshold))
    if args.markdown:
        atomic.write_text(args.markdown, compare.markdown(rows, timings, args.threshold))
    return 1 if compare.failed(rows) else 0


def run_baseline(args) -> int:
    docs, warnings = results.load_many(args.runs)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if not docs:
        raise SuiteError("no results to take a baseline from", args.runs[0])
    latest = figures.latest(docs)
    lines = baseline.update([f for d in latest for f in figures.of(d)], args.reason, [d["id"] for d in latest])
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


def chosen_engines(target: targets.Target, asked: str | None) -> list[str]:
    """`--engine`: one engine, or every engine available for the target (the default, and `all`)."""
    if asked not in (None, "all"):
        why = engines.available(asked)
        if why:
            raise SuiteError(f"engine {asked} cannot run here: {why}")
        return [asked]
    return [e for e in target.engines if engines.available(e) is None]


def run(args, parser: argparse.ArgumentParser, saved: list[Path]) -> int:
    target = targets.get(args.target)
    if args.blocks > target.max_blocks:
        parser.error(
            f"argument --blocks: {args.blocks} is more than {target.name} records (at most "
            f"{target.max_blocks}, BENCH_MAX_BLOCKS in platformio.ini)"
        )
    results.check_writable(args.out)
    missing = target.missing()
    if missing:
        raise SuiteError(f"target {target.name} needs {', '.join(missing)}")
    doc = manifest.load(args.models_dir)
    chosen = chosen_engines(target, args.engine)
    found = rtneural.find()
    board = open_board(args, target, chosen)
    try:
        return run_engines(args, target, chosen, doc, found, saved, board)
    finally:
        if board is not None:
            board.close()


def open_board(args, target: targets.Target, chosen: list[str]) -> remote.Board | None:
    """The board of --device, --place or --lg-env, checked to run what the target builds."""
    if not (args.device or args.place or args.lg_env):
        return None
    if target.os != "linux":
        raise SuiteError(f"--device, --place and --lg-env run Linux targets; {target.name} is {target.os}")
    if engines.JSON in chosen:
        raise SuiteError(f"{engines.JSON} reads the models from a folder on this machine: choose another --engine")
    if args.device:
        board = remote.connect(args.device, args.ssh_key, args.run_prefix, args.connect_timeout)
    elif args.place:
        board = remote.acquire(args.place, args.coordinator, args.ssh_key, args.run_prefix, args.connect_timeout)
    else:
        board = remote.from_environment(args.lg_env, args.ssh_key, args.run_prefix)
    board.root = args.remote_dir
    try:
        machine = board.machine()
        if machine not in remote.MACHINES.get(target.name, ()):
            raise SuiteError(
                f"board {board.name} is {machine} (uname -m); the {target.name} build runs on "
                f"{' or '.join(remote.MACHINES.get(target.name, ('none of these',)))}"
            )
    except BaseException:
        board.close()
        raise
    board.machine_name = machine
    return board


def run_engines(args, target, chosen, doc, found, saved: list[Path], board: remote.Board | None) -> int:
    count = target.run == "native" and board is None and callgrind.available() and not args.no_callgrind
    harness_args = [
        *("--blocks", str(args.blocks), "--warmup", str(args.warmup)),
        *("--block-size", str(args.block_size), "--sample-rate", str(args.sample_rate)),
    ]
    timing = target.timing if board is None else "emulated" if board.run_prefix else "measured"
    if timing == "measured":  # cold blocks only mean something where time is measured
        harness_args += ["--cold", str(min(args.cold, target.max_blocks))]
    steps = ["build", "run"] + (["callgrind"] if count else [])
    counter = callgrind.version() if count else targets.emulator_version(target) if timing == "counted" else None
    commit = project_commit()
    docs, paths = [], []
    with tqdm(total=len(chosen) * len(steps), desc=f"bench {target.name}", unit="step", disable=None) as bar:
        for engine in chosen:
            bar.set_postfix_str(f"{engine}: build")
            root = args.build_dir / f"build-{engine}" if args.build_dir else None
            built = build(target, engine, args.models_dir, root)
            bar.update()
            bar.set_postfix_str(f"{engine}: run {args.blocks} blocks")
            if board is None:
                text = harness.run(target, built.program, harness_args)
            else:
                text = harness.run_on_board(board, target, engine, built.program, harness_args)
            output = harness.parse(text, str(built.program) if board is None else f"board {board.name}")
            bar.update()
            instructions = None
            if count:
                bar.set_postfix_str(f"{engine}: callgrind")
                instructions = callgrind.per_block(built.program)
                bar.update()
            for warning in output["warnings"]:
                tqdm.write(f"warning: {target.name} / {engine}: the harness says: {warning}", file=sys.stderr)
            key = engines.manifest_key(engine)
            tolerance = max(m["engines"][key]["tolerance"] for m in doc["models"])
            rt_commit = found.commit if found is not None and not engines.is_generated(engine) else None
            result = results.document(
                target,
                engine,
                built,
                output,
                instructions,
                rt_commit,
                commit,
                tolerance=tolerance,
                counter=counter,
                device=None if board is None else remote_device(board),
            )
            docs.append(result)
            paths.append(results.write(result, args.out))
            saved.append(paths[-1])
    for result, path in zip(docs, paths, strict=True):
        print(summary(result))
        print(f"saved {path}\n")
    failed = [d for d in docs if not d["parity_ok"]]
    for d in failed:
        print(
            f"error: parity above {d['parity_tolerance']:g} on {target.name} with {results.engine_name(d)}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def remote_device(board: remote.Board) -> dict:
    return {
        "name": board.name,
        "label": board.label,
        "machine": board.machine_name,
        "run_prefix": " ".join(board.run_prefix) or None,
    }


def summary(doc: dict) -> str:
    unit = {"measured": "us", "emulated": "us (emulated)", "counted": "us (virtual: 1 ns per instruction)"}
    head = (
        f"{doc['target']['name']} / {results.engine_name(doc)}: {doc['config']['blocks']} blocks of "
        f"{doc['config']['block_size']} samples at {doc['config']['sample_rate']} Hz "
        f"(deadline {doc['config']['deadline_us']:.0f} us); times in {unit[doc['timing']['kind']]}"
    )
    rows = []
    for name, m in doc["models"].items():
        lat = m["latency_us"]
        rows.append(
            (
                name,
                *(f"{lat[k]:.1f}" for k in ("p50", "p95", "p99", "max")),
                f"{lat['mean'] / doc['config']['deadline_us']:.4f}",
                fmt_int(m["instructions_per_forward"]),
                f"{m['parity_max_abs_error']:.1e}",
                f"{m['model_bytes']:,}",
            )
        )
    s = doc["set"]
    rows.append(
        (
            f"set ({len(doc['models'])} models)",
            *(f"{s['latency_us'][k]:.1f}" for k in ("p50", "p95", "p99", "max")),
            f"{s['real_time_factor']:.4f}",
            fmt_int(s["instructions_per_block"]),
            "ok" if doc["parity_ok"] else "FAIL",
            f"{sum(m['model_bytes'] for m in doc['models'].values()):,}",
        )
    )
    b = doc["build"]
    rss = doc["process"]["peak_rss_kib"]
    rss = f"{rss} KiB" if rss is not None else "n/a (no OS)"
    tail = (
        f"deadline misses {s['deadline_misses']}; heap in forward(): {doc['heap']['forward_allocations']} "
        f"allocations, {doc['heap']['forward_bytes']} bytes; peak RSS {rss}; "
        f"binary text {b['binary']['text']:,} data {b['binary']['data']:,} bss {b['binary']['bss']:,}; "
        f"build {b['seconds']:.1f} s{' (reused)' if b['reused'] else ''}"
    )
    columns = ("model", "p50", "p95", "p99", "max", "RTF", "instr/block", "parity", "model bytes")
    cold = doc["set"].get("latency_cold_us")
    if cold:
        warm = doc["set"]["latency_us"]
        tail += (
            f"\ncold ({doc['set']['cold_blocks']} blocks, caches evicted before each): set p50 {cold['p50']:.1f} us"
            f" (warm {warm['p50']:.1f}), p99 {cold['p99']:.1f} us"
        )
    return f"{head}\n{table.render(rows, columns)}\n{tail}"


def fmt_int(value) -> str:
    return "-" if value is None else f"{value:,}"


if __name__ == "__main__":
    sys.exit(main())
