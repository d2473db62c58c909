"""`bench run`: build the harness for a target (or every target) through PlatformIO, run it here,
under QEMU or on a board over SSH, check parity, measure, and save one result per engine."""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tqdm import tqdm

from bench import boards, callgrind, figures, harness, mca, results, targets
from bench.build import PIO_DIR, build, picked_export
from common import cli, engines, layout, manifest, remote, rtneural, table
from common.errors import SuiteError
from common.git import project_commit


@dataclass(frozen=True)
class Options:
    """One `bench run`: what to build and run, where and how much. Made from the command line
    (from_args) or by another command (compare-engines); the defaults are the command line's."""

    target: str  # a target's name, or "all"
    engine: str | None = None  # one engine; None or "all": every engine available for the target
    models: tuple[str, ...] | None = None  # None: every model of the export (with_picked applies a choice)
    blocks: int = 1000
    warmup: int = 100
    cold: int = 100  # blocks also measured with the caches evicted (where time is measured)
    block_size: int = 512
    sample_rate: int = 48000
    models_dir: Path = layout.MODELS_DIR
    out: Path = layout.RUNS_DIR
    build_dir: Path | None = None  # None: .pio/build-<engine>
    no_callgrind: bool = False
    # on a board (at most one of device, place, lg_env)
    device: str | None = None  # user@host[:port] or an SSH config alias
    place: str | None = None
    lg_env: Path | None = None
    coordinator: str = field(default_factory=remote.default_coordinator)
    ssh_key: str | None = None
    ssh_config: Path | None = None  # where --device aliases are looked up (None: ssh's own)
    run_prefix: str = ""
    connect_timeout: float = remote.CONNECT_TIMEOUT
    remote_dir: str = remote.REMOTE_ROOT

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        """From `bench run`'s parsed arguments (each field has the flag of its name)."""
        given = {f.name: getattr(args, f.name) for f in fields(cls)}
        return cls(**{**given, "models": cli.model_names(given["models"])})

    @property
    def on_board(self) -> bool:
        return bool(self.device or self.place or self.lg_env)


DEFAULTS = Options(target="")  # the command line's defaults, from the one place they are set

# The counts of blocks, each at most the target's BENCH_MAX_BLOCKS: the blocks the harness records
# (measured warm, and cold), and the warm-up, which needs no more blocks than a run measures (a
# warm-up of 10^10 blocks ran for minutes, and the harness reads each count as a C int).
BLOCK_COUNTS = {"blocks": "records", "cold": "records cold", "warmup": "runs as warm-up"}


def check(options: Options) -> None:
    """What the flags cannot say together, before any work (UsageError names the flag)."""
    if options.target == "all":
        if options.on_board:
            raise cli.UsageError(
                "--target all runs the targets on this machine; give one --target with --device or --place"
            )
        # each target runs at most its own limit (run_matrix): the largest of them bounds the flags
        target = max(targets.load().values(), key=lambda t: t.max_blocks)
        name = f"any target ({target.name})"
    else:
        target = targets.get(options.target)
        name = target.name
    for flag, what in BLOCK_COUNTS.items():
        value = getattr(options, flag)
        if value > target.max_blocks:
            raise cli.UsageError(
                f"argument --{flag}: {value} is more than {name} {what} (at most "
                f"{target.max_blocks}, BENCH_MAX_BLOCKS in platformio.ini)"
            )


def within_limits(options: Options, target: targets.Target) -> Options:
    """The options with each count of blocks at most what `target` runs (--target all)."""
    return replace(options, **{f: min(getattr(options, f), target.max_blocks) for f in BLOCK_COUNTS})


def with_picked(options: Options) -> Options:
    """`--models`: the options of a harness holding the picked models only, built from an export
    folder of them (build.picked_export) in build folders of their own; the options as they are
    when every model is picked. A name the export does not have is refused with the names it has."""
    if options.models is None:
        return options
    doc = manifest.load(options.models_dir)
    known = manifest.models(doc)
    picked = []
    for name in options.models:  # the export's name, or the model's own (GroovePredictor)
        row = next((m for m in doc["models"] if name in (m["name"], m.get("model"))), None)
        if row is None:
            raise SuiteError(f"--models: unknown model {name!r}; {options.models_dir} has {', '.join(known)}")
        if row["name"] in picked:
            raise SuiteError(f"--models: {row['name']} is named twice")
        picked.append(row["name"])
    names = [n for n in known if n in picked]  # in export order, as every table is
    if len(names) == len(known):
        return replace(options, models=None)
    # a build folder per choice of models, named by them (by a hash where they make a long name)
    digest = hashlib.sha256(",".join(names).encode()).hexdigest()[:12]
    key = "+".join(names) if len(names) <= 3 else f"{len(names)}-models-{digest}"
    root = (options.build_dir or PIO_DIR) / f"picked-{key}"
    tqdm.write(
        f"models: {', '.join(names)} ({len(names)} of {len(known)} in {options.models_dir}); "
        "the harness is built with these alone",
        file=sys.stderr,
    )
    models_dir = picked_export(options.models_dir, names, root / "models")
    return replace(options, models=None, models_dir=models_dir, build_dir=root)


def chosen_engines(target: targets.Target, asked: str | None, quiet: bool = False) -> list[str]:
    """`--engine`: one engine, or every engine available for the target (the default, and `all`),
    naming each of the target's engines that cannot build here, and why (unless `quiet`). An
    engine the target does not run is refused as that, before asking whether it builds here."""
    if asked not in (None, "all"):
        if asked not in target.engines:
            raise SuiteError(
                f"engine {asked} is not a {target.name} engine: it runs {', '.join(target.engines)} "
                f"(custom_engines in platformio.ini)"
            )
        why = engines.available(asked)
        if why:
            raise SuiteError(f"engine {asked} cannot run here: {why}")
        return [asked]
    chosen = []
    for engine in target.engines:
        why = engines.available(engine)
        if why is None:
            chosen.append(engine)
        elif not quiet:
            tqdm.write(f"skipped engine {engine}: {why}", file=sys.stderr)
    return chosen


def in_export(doc: dict, chosen: list[str], asked: str | None) -> list[str]:
    """The chosen engines that run some model of the export; those that run only some of its models
    are said so, with why (the manifest's `unavailable`), and an engine asked for by name that runs
    none is an error."""
    keep = []
    for engine in chosen:
        key = engines.manifest_key(engine)
        why = {m["name"]: m.get("unavailable", {}).get(key) for m in doc["models"] if key not in m["engines"]}
        reasons = "; ".join(f"{name}: {reason or 'not exported for it'}" for name, reason in why.items())
        if key not in doc["engines"]:
            if asked not in (None, "all"):
                raise SuiteError(f"engine {engine}: no model of this export runs on it ({reasons})")
            tqdm.write(f"skipped engine {engine}: no model of this export runs on it ({reasons})", file=sys.stderr)
            continue
        if why:
            tqdm.write(
                f"engine {engine} runs {len(doc['models']) - len(why)} of {len(doc['models'])} models ({reasons})"
            )
        keep.append(engine)
    return keep


def run(options: Options, saved: list[Path]) -> int:
    """`bench run`: every check first (flags, output folder, toolchain, export, engines, the board),
    then build, run and save one result per engine, each saved path appended to `saved` as it is."""
    check(options)
    if options.target == "all":
        return run_matrix(options, saved)
    target = targets.get(options.target)
    results.check_writable(options.out)
    missing = target.missing()
    if missing:
        raise SuiteError(f"target {target.name} needs {', '.join(missing)}")
    options = with_picked(options)
    doc = manifest.load(options.models_dir)
    chosen = in_export(doc, chosen_engines(target, options.engine), options.engine)
    found = rtneural.find()
    board = open_board(options, target, chosen)
    try:
        total = len(chosen) * len(steps_for(options, target, board))
        with tqdm(total=total, desc=f"bench {target.name}", unit="step", disable=None) as bar:
            docs, paths = run_engines(options, target, chosen, doc, found, saved, board, bar)
    finally:
        if board is not None:
            board.close()
    for result, path in zip(docs, paths, strict=True):
        print(summary(result))
        print(f"saved {path}\n")
    for engine in dict.fromkeys(chosen):
        for line in precision_cost(doc, engine):
            print(line)
    return parity_verdict(docs)


def precision_cost(doc: dict, engine: str) -> list[str]:
    """A line for each model whose reduced precision costs more than layout.INT8_SNR_BAR_DB against
    its reference outputs (the export's figures)."""
    lines = []
    for m in doc["models"]:
        e = m["engines"].get(engines.manifest_key(engine), {})
        snr = e.get("snr_db", layout.INT8_SNR_BAR_DB)
        if e and e["dtype"] != "float32" and not (snr is not None and snr >= layout.INT8_SNR_BAR_DB):
            lines.append(
                f"note: {engine} costs {m['name']} more than the bar: SNR "
                f"{'n/a' if snr is None else f'{snr:.1f}'} dB against its reference (bar "
                f"{layout.INT8_SNR_BAR_DB:g} dB), max error {e['error_vs_float32']:.2e}"
            )
    return lines


def parity_verdict(docs: list[dict]) -> int:
    failed = [d for d in docs if not d["parity_ok"]]
    for d in failed:
        print(
            f"error: parity above {d['parity_tolerance']:g} on {d['target']['name']} with {results.engine_name(d)}",
            file=sys.stderr,
        )
    return 1 if failed else 0


def run_matrix(options: Options, saved: list[Path]) -> int:
    """`--target all`: every target whose toolchain is here, each with the engines asked for that
    build there, under one progress bar; builds are reused as by single runs. Ends with the fastest
    engine of each target and the boards its set fits."""
    results.check_writable(options.out)
    options = with_picked(options)
    doc = manifest.load(options.models_dir)
    found = rtneural.find()
    plan, skipped = [], []
    for target in targets.load().values():
        missing = target.missing()
        engines_here = [e for e in chosen_engines(target, None, quiet=True) if options.engine in (None, "all", e)]
        engines_here = in_export(doc, engines_here, options.engine)
        if missing or not engines_here:
            skipped.append((target.name, f"needs {', '.join(missing)}" if missing else f"no {options.engine} here"))
            continue
        plan.append((target, engines_here))
    total = sum(len(chosen) * len(steps_for(options, t, None)) for t, chosen in plan)
    docs = []
    with tqdm(total=total, desc="bench all targets", unit="step", disable=None) as bar:
        for target, chosen in plan:
            per_target = within_limits(options, target)  # each target runs at most its own limit
            docs += run_engines(per_target, target, chosen, doc, found, saved, None, bar)[0]
    print(f"{len(docs)} runs on {len(plan)} targets, saved in {options.out}")
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    print(table.render(matrix_rows(docs), MATRIX_HEAD))
    return parity_verdict(docs)


MATRIX_HEAD = ("target", "engines", "parity", "fastest engine", "set p50", "timing", "boards it fits")
UNITS = {"measured": "us", "emulated": "us (emulated)", "counted": "instructions"}


def matrix_rows(docs: list[dict]) -> list[tuple]:
    assessed = boards.assess(docs, boards.load())
    rows = []
    for name in dict.fromkeys(d["target"]["name"] for d in docs):
        mine = [d for d in docs if d["target"]["name"] == name]
        best = min(mine, key=lambda d: d["set"]["latency_us"]["p50"])
        engine, kind, p50 = results.engine_name(best), best["timing"]["kind"], best["set"]["latency_us"]["p50"]
        fits = [a["board"] for a in assessed if a["result"] == best["id"] and a["fit"]["fits"]]
        boards_here = [a["board"] for a in assessed if a["result"] == best["id"]]
        rows.append(
            (
                name,
                len(mine),
                f"{sum(d['parity_ok'] for d in mine)}/{len(mine)} ok",
                engine,
                f"{p50 * 1000:,.0f}" if kind == "counted" else f"{p50:,.1f}",
                UNITS[kind],
                ", ".join(fits) or ("none" if boards_here else "-"),
            )
        )
    return rows


def steps_for(args: Options, target: targets.Target, board) -> list[str]:
    count = target.run == "native" and board is None and callgrind.available() and not args.no_callgrind
    return ["build", "run"] + (["callgrind"] if count else [])


def open_board(args: Options, target: targets.Target, chosen: list[str]) -> remote.Board | None:
    """The board of --device, --place or --lg-env, checked to run what the target builds."""
    if not args.on_board:
        return None
    if target.os != "linux":
        raise SuiteError(f"--device, --place and --lg-env run Linux targets; {target.name} is {target.os}")
    if engines.JSON in chosen:
        raise SuiteError(f"{engines.JSON} reads the models from a folder on this machine: choose another --engine")
    if args.device:
        board = remote.connect(args.device, args.ssh_key, args.run_prefix, args.connect_timeout, args.ssh_config)
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


def run_engines(
    args: Options, target, chosen, doc, found, saved: list[Path], board, bar
) -> tuple[list[dict], list[Path]]:
    """Build, run and save each chosen engine on one target, advancing `bar` a step at a time."""
    count = "callgrind" in steps_for(args, target, board)
    harness_args = [
        *("--blocks", str(args.blocks), "--warmup", str(args.warmup)),
        *("--block-size", str(args.block_size), "--sample-rate", str(args.sample_rate)),
    ]
    timing = target.timing if board is None else "emulated" if board.run_prefix else "measured"
    if timing == "measured":  # cold blocks only mean something where time is measured
        harness_args += ["--cold", str(args.cold)]
    counter = callgrind.version() if count else targets.emulator_version(target) if timing == "counted" else None
    commit = project_commit()
    cores = {b["mca_cpu"] for b in boards.for_target(boards.load(), target.name)}  # for the per-board estimates
    docs, paths = [], []
    for engine in chosen:
        bar.set_postfix_str(f"{target.name} / {engine}: build")
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
        loop = hot_loop(target, built.program, cores, engines.PRECISIONS.get(engine) == "int8")
        for warning in output["warnings"]:
            tqdm.write(f"warning: {target.name} / {engine}: the harness says: {warning}", file=sys.stderr)
        key = engines.manifest_key(engine)
        tolerance = max(m["engines"][key]["tolerance"] for m in doc["models"] if key in m["engines"])
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
        result["hot_loop"] = loop
        docs.append(result)
        paths.append(results.write(result, args.out))
        saved.append(paths[-1])
    return docs, paths


def hot_loop(target: targets.Target, program: Path, cores: set[str], integer: bool) -> dict | None:
    """The program's hottest inner loop (integer where `integer`: an int8 engine) and llvm-mca's
    cycles per iteration for it on each of `cores` (those of the boards that run this target), for
    the per-board estimates."""
    loop = mca.hottest(target, program, integer) if cores else None
    if loop is None:
        return None
    per_core = {c: mca.cycles(target, loop, c) for c in sorted(cores)}
    return {
        "instructions": len(loop["instructions"]),
        "macs_per_iteration": loop["macs"],
        "cycles_per_iteration": {c: r["cycles_per_iteration"] for c, r in per_core.items() if r},
    }


def remote_device(board: remote.Board) -> dict:
    return {
        "name": board.name,
        "label": board.label,
        "machine": board.machine_name,
        "run_prefix": " ".join(board.run_prefix) or None,
    }


def summary(doc: dict) -> str:
    """What `bench run` prints for a result: times per model and for the set, memory per model and
    for the set, and the run's figures. Deadline misses and shares of the deadline only where the
    time was measured on the CPU that runs the program: an emulated or counted time is no verdict."""
    kind, config = doc["timing"]["kind"], doc["config"]
    measured = kind == "measured"
    unit = {"measured": "us", "emulated": "us (emulated)", "counted": "us (virtual: 1 ns per instruction)"}
    head = (
        f"{doc['target']['name']} / {results.engine_name(doc)}: {config['blocks']} blocks of "
        f"{config['block_size']} samples at {config['sample_rate']} Hz"
        + (f" (deadline {config['deadline_us']:.0f} us)" if measured else "")
        + f"; times in {unit[kind]}"
        + ("" if measured else ", not measured on the CPU that runs it: no deadline verdict")
    )
    rows = []
    for name, m in doc["models"].items():
        lat = m["latency_us"]
        ps = m.get("per_sample")
        rows.append(
            (
                name,
                *(f"{lat[k]:.1f}" for k in ("p50", "p95", "p99", "max")),
                f"{lat['mean'] / config['deadline_us']:.4f}",
                fmt_int(figures.instructions(doc, name)),
                f"{ps['ns_p50']:.1f}" if ps else "-",
                f"{ps['real_time_factor']:,.0f}x" if ps else "-",
                "-" if not ps or ps["instructions"] is None else f"{ps['instructions']:,.0f}",
                f"{results.max_error([m]):.1e}",
            )
        )
    s = doc["set"]
    rows.append(
        (
            f"set ({len(doc['models'])} models)",
            *(f"{s['latency_us'][k]:.1f}" for k in ("p50", "p95", "p99", "max")),
            f"{s['real_time_factor']:.4f}",
            fmt_int(figures.instructions(doc)),
            "-",
            "-",
            "-",
            "ok" if doc["parity_ok"] else "FAIL",
        )
    )
    # mean/deadline: the share of the block's time used. A sample-rate model (one step per audio
    # sample) also shows ns per sample, the field's real-time factor (audio seconds per compute
    # second) and instructions per sample.
    columns = (
        "model",
        "p50",
        "p95",
        "p99",
        "max",
        "mean/deadline",
        "instr/block",
        "ns/sample",
        "real time",
        "instr/sample",
        "parity",
    )
    if not measured:  # against the deadline, an emulated or counted time would read as a verdict
        keep = [i for i, c in enumerate(columns) if c not in VERDICT_COLUMNS]
        columns, rows = tuple(columns[i] for i in keep), [tuple(r[i] for i in keep) for r in rows]
    b = doc["build"]
    tail = (
        (f"deadline misses {s['deadline_misses']}; " if measured else "")
        + f"heap in forward(): {doc['heap']['forward_allocations']} allocations, {doc['heap']['forward_bytes']} bytes; "
        f"peak RSS {peak_rss(doc)}; "
        f"binary text {b['binary']['text']:,} data {b['binary']['data']:,} bss {b['binary']['bss']:,}; "
        f"build {b['seconds']:.1f} s{' (reused)' if b['reused'] else ''}"
    )
    cold = doc["set"].get("latency_cold_us")
    if cold:
        warm = doc["set"]["latency_us"]
        tail += (
            f"\ncold ({doc['set']['cold_blocks']} blocks, caches evicted before each): set p50 {cold['p50']:.1f} us"
            f" (warm {warm['p50']:.1f}), p99 {cold['p99']:.1f} us"
        )
    memory = table.render(memory_rows(doc), MEMORY_HEAD)
    return f"{head}\n{table.render(rows, columns)}\n{memory}\n{MEMORY_NOTE}\n{tail}"


VERDICT_COLUMNS = ("mean/deadline", "real time")  # shown only for times measured on the CPU that runs it
MEMORY_HEAD = ("model", "weights (B)", "code (B)", "object (B)", "stack (B)")
MEMORY_NOTE = (
    "weights as the engine stores them; code: the model's own functions (shared kernels not counted); object: its\n"
    "state and scratch; stack: the deepest of one forward(), painted on the target (the set's: its deepest model's)"
)
RSS_COVERS = {
    results.RSS_WITHOUT_EVICTION: "the whole run but the cold blocks' cache-eviction buffer",
    results.RSS_WHOLE_RUN: "the whole run, the cold blocks' cache-eviction buffer included",
    results.RSS_EMULATOR: "the emulator's process, not the program's own",
}


def memory_rows(doc: dict) -> list[tuple]:
    """Bytes per model and for the set: weights, code, object and stack; '-' where not measured
    (the set's too, where a model's is not)."""
    models = doc["models"].values()

    def total(key, combine=sum):
        values = [m.get(key) for m in models]
        return None if None in values else combine(values)

    rows = [
        (name, *(fmt_int(m.get(k)) for k in ("weight_bytes", "code_bytes", "model_bytes", "stack_bytes")))
        for name, m in doc["models"].items()
    ]
    sums = (total("weight_bytes"), total("code_bytes"), total("model_bytes"), total("stack_bytes", max))
    return [*rows, (f"set ({len(doc['models'])} models)", *(fmt_int(v) for v in sums))]


def peak_rss(doc: dict) -> str:
    """The peak RSS with what it covers: without the cold blocks' eviction buffer, the whole run
    (with it, in results written before), or an emulator's process."""
    kib, covers = doc["process"]["peak_rss_kib"], doc["process"]["peak_rss_covers"]
    if kib is None:
        return "n/a (no OS)"
    if covers != results.RSS_EMULATOR and not doc["set"].get("cold_blocks"):
        return f"{kib:,} KiB (the whole run)"  # no cold blocks: no eviction buffer either way
    return f"{kib:,} KiB ({RSS_COVERS[covers]})"


def fmt_int(value) -> str:
    return "-" if value is None else f"{value:,}"
