"""`bench layers`: RTNeural's layer benchmark done the suite's way.

Each layer of the set (bench/layers.json: Dense, GRU, LSTM, Conv1D and the activations at several
sizes) becomes a model of one layer, written as RTNeural's Keras-style JSON with seeded random
weights and turned into every engine's headers by the exporter, run as a subprocess (`python -m
exporter import ... --rate sample`: the stages meet through files). Each engine's table is compiled
into a shared library of its own (bench/layers_engine.cpp; why not one object per engine is said
there), and one program (bench/layers.cpp) loads them all into one process and runs every layer on
every engine one 512-sample block per call over `--seconds` of audio at 48 kHz, interleaved: each
round every engine runs a slice in turn, so the machine's noise hits all alike, and the figures are
medians over the rounds. A short extra run under callgrind counts instructions per sample. Results
go to reports/layers/<id>.json (schema rt-music-bench/layers/1, bench/layers.schema.json).
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bench import callgrind, results, rtneural_bench, targets
from common import atomic, cxx, engines, git, jsonfile, layout, manifest, rtneural, table
from common.errors import SuiteError

SET_PATH = Path(__file__).with_name("layers.json")
SET_SCHEMA_ID = "rt-music-bench/layer-set/1"
SCHEMA_ID = "rt-music-bench/layers/1"
PROGRAM = Path(__file__).with_name("layers.cpp")
LIBRARY = Path(__file__).with_name("layers_engine.cpp")
WORK_DIR = layout.PROJECT / "build" / "layers"
OUT_DIR = layout.PROJECT / "reports" / "layers"
BLOCK_SIZE = 512
SAMPLE_RATE = 48000
ROUNDS = 15
COUNT_BLOCKS = 2  # blocks per layer and engine under callgrind (after one uncounted block)
# Every engine of the suite that runs a ModelT-style table: the generated engine at each precision
# and RTNeural's backends (not rtneural-json: RTNeural's xsimd backend again, read from JSON).
ENGINES = (*engines.PRECISIONS, *rtneural.BACKENDS)
TYPES = ("dense", "gru", "lstm", "conv1d", "activation")
AXES = ("units", "inputs", "activation", "kernel_size", "dilation")


@dataclass(frozen=True)
class Layer:
    name: str
    type: str
    units: int
    inputs: int
    activation: str = ""
    kernel_size: int = 0
    dilation: int = 0

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Keras's layout, as RTNeural's JSON holds it (docs/EXPORT.md)."""
        i, h = self.inputs, self.units
        return {
            "dense": [(i, h), (h,)],
            "gru": [(i, 3 * h), (h, 3 * h), (2, 3 * h)],
            "lstm": [(i, 4 * h), (h, 4 * h), (4 * h,)],
            "conv1d": [(self.kernel_size, i, h), (h,)],
            "activation": [],
        }[self.type]

    def fan_in(self) -> int:
        """What PyTorch scales a layer's initial weights by (1/sqrt of it)."""
        return {"gru": self.units, "lstm": self.units, "conv1d": self.inputs * self.kernel_size}.get(
            self.type, self.inputs
        )

    def model_json(self, seed: int) -> dict:
        """The layer as a model of its own in RTNeural's Keras-style JSON; weights uniform in
        +-1/sqrt(fan_in) as PyTorch initialises them, from `seed` and the layer's name."""
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        bound = 1 / math.sqrt(self.fan_in())
        weights = [rng.uniform(-bound, bound, shape).astype(np.float32).tolist() for shape in self.weight_shapes()]
        entry = {
            "type": self.type,
            "activation": self.activation
            if self.type == "activation"
            else "tanh"
            if self.type in ("gru", "lstm")
            else "",
            "shape": [None, None, self.units],
            "weights": weights,
        }
        if self.type == "conv1d":
            entry.update(kernel_size=[self.kernel_size], dilation=[self.dilation], groups=1)
        return {"in_shape": [None, None, self.inputs], "layers": [entry]}

    def describe(self) -> dict:
        d = {"name": self.name, "type": self.type, "units": self.units, "inputs": self.inputs}
        if self.activation:
            d["activation"] = self.activation
        if self.type == "conv1d":
            d.update(kernel_size=self.kernel_size, dilation=self.dilation)
        return d


def load_set(path: Path = SET_PATH) -> tuple[list[Layer], int]:
    """The layers of the set file, each row expanded over its axes, and the weights' seed."""
    doc = jsonfile.read(path, 1 << 20, "layer set", "no such layer set")
    if not isinstance(doc, dict) or doc.get("schema") != SET_SCHEMA_ID or not isinstance(doc.get("layers"), list):
        raise SuiteError(f"not a {SET_SCHEMA_ID} document (schema, seed, layers)", path)
    seed = doc.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise SuiteError("seed: give a whole number >= 0", path)
    layers: dict[str, Layer] = {}
    for n, row in enumerate(doc["layers"]):
        where = f"layers[{n}]"
        if not isinstance(row, dict) or row.get("type") not in TYPES or not isinstance(row.get("name"), str):
            raise SuiteError(f"{where}: needs a type ({', '.join(TYPES)}) and a name pattern", path)
        unknown = set(row) - {"type", "name", *AXES}
        if unknown:
            raise SuiteError(f"{where}: unknown keys {', '.join(sorted(unknown))}", path)
        axes = {k: v if isinstance(v, list) else [v] for k, v in row.items() if k in AXES}
        for combo in itertools.product(*axes.values()):
            values = dict(zip(axes, combo, strict=True))
            if values.get("inputs") == "units":
                values["inputs"] = values.get("units")
            layer = checked_layer(row, values, where, path)
            if layer.name in layers:
                raise SuiteError(
                    f"{where}: {layer.name} twice in the set (its name pattern must tell them apart)", path
                )
            layers[layer.name] = layer
    return list(layers.values()), seed


def checked_layer(row: dict, values: dict, where: str, path: Path) -> Layer:
    def size(key, high=layout.MAX_BLOCK_SIZE):
        v = values.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= high:
            raise SuiteError(f"{where}: {key} {v!r}: give a whole number from 1 to {high}", path)
        return v

    kind = row["type"]
    activation = values.get("activation", "")
    if kind == "activation" and activation not in ("tanh", "sigmoid", "relu", "elu", "softmax"):
        raise SuiteError(f"{where}: activation {activation!r}: give tanh, sigmoid, relu, elu or softmax", path)
    try:
        name = row["name"].format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise SuiteError(f"{where}: name pattern {row['name']!r}: {exc}", path) from None
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        raise SuiteError(f"{where}: name {name!r}: give a snake_case name (a C++ identifier)", path)
    return Layer(
        name=name,
        type=kind,
        units=size("units"),
        inputs=size("inputs"),
        activation=activation if kind == "activation" else "",
        kernel_size=size("kernel_size", 64) if kind == "conv1d" else 0,
        dilation=size("dilation", 256) if kind == "conv1d" else 0,
    )


def select(layers: list[Layer], terms: list[str]) -> list[Layer]:
    """The layers `--layers` names: each term a type (gru), an activation (tanh), a name
    (lstm_16_in1) or a glob over names (lstm_*_in1); every term must match something."""
    if not terms:
        return layers
    chosen = set()
    for term in terms:
        hits = {
            layer.name
            for layer in layers
            if term in (layer.type, layer.activation, layer.name) or fnmatch.fnmatchcase(layer.name, term)
        }
        if not hits:
            kinds = sorted({layer.type for layer in layers} | {layer.activation for layer in layers} - {""})
            raise SuiteError(
                f"argument --layers: {term!r} matches no layer; give a kind ({', '.join(kinds)}), a name or a glob"
            )
        chosen |= hits
    return [layer for layer in layers if layer.name in chosen]


# The test vectors import writes are for validation, which the benchmark does not run: kept short
# (96 samples; the default second of 48 layers writes 300 MB of vector headers).
IMPORT_SECONDS = 0.002


MARK = ".bench-layers"  # in a --work folder: its json/ and models/ are bench layers' own


def claim(work: Path, names: set[str]) -> None:
    """work/json and work/models are emptied before each export: only where bench layers made them
    (its mark), or where all they hold is layers of the set (a folder from before the mark), so a
    --work that is another folder (build, whose models/ is the project's export) loses nothing."""
    src, models_dir = work / "json", work / "models"
    if not (work / MARK).exists():
        theirs = [p.name for p in src.iterdir() if p.suffix != ".json" or p.stem not in names] if src.is_dir() else []
        if models_dir.exists():
            try:
                doc = jsonfile.read(models_dir / "manifest.json", jsonfile.MANIFEST_BYTES, "manifest", "no manifest")
                theirs += [m["name"] for m in doc["models"] if m["name"] not in names]
            except (SuiteError, KeyError, TypeError):
                theirs.append("models/")
        if theirs:
            named = ", ".join(theirs[:3]) + (", ..." if len(theirs) > 3 else "")
            raise SuiteError(
                f"--work holds json/ or models/ that bench layers did not make ({named}), which it would "
                "empty; give it a folder of its own (default build/layers)",
                work,
            )
    work.mkdir(parents=True, exist_ok=True)
    (work / MARK).touch()


def export(layers: list[Layer], seed: int, work: Path, seconds: float = IMPORT_SECONDS) -> Path:
    """Each layer's model JSON into work/json/, then every engine's headers and the manifest into
    work/models/ through the exporter's command line (a subprocess: bench never imports it), with
    `seconds` of test vectors at 48 kHz. `claim(work)` first."""
    src, models_dir = work / "json", work / "models"
    # an import adds to the models already in its folder: start both afresh (the compiles are cached)
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(models_dir, ignore_errors=True)
    files = []
    for layer in layers:
        path = src / f"{layer.name}.json"
        atomic.write_json(path, layer.model_json(seed), indent=None)
        files.append(str(path))
    command = [sys.executable, "-m", "exporter", "import", *files, "--out", str(models_dir), "--rate", "sample"]
    command += ["--no-validate", "--seconds", str(seconds)]
    done = subprocess.run(command, cwd=layout.PROJECT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SuiteError(f"python -m exporter import failed:\n{(done.stderr or done.stdout).strip()[-2000:]}", src)
    return models_dir


def host() -> targets.Target:
    """The target this machine is: its flags build the libraries (x86: -O3 -march=x86-64-v3)."""
    for t in targets.load().values():
        if t.run == "native":
            return t
    raise SuiteError("no native target in platformio.ini", targets.INI)


def alignment(target: targets.Target) -> int:
    from platformio.project.config import ProjectConfig

    return int(ProjectConfig(str(targets.INI)).get(f"env:{target.env}", "custom_alignment", 16))


def available() -> tuple[list[str], dict[str, str]]:
    """The engines that build here, and why each other one does not."""
    ok, why = [], {}
    for engine in ENGINES:
        reason = engines.available(engine)
        if reason is None:
            ok.append(engine)
        else:
            why[engine] = reason
    return ok, why


def library_flags(engine: str, models_dir: Path, target: targets.Target) -> list[str]:
    doc = manifest.load(models_dir)
    table_file = doc["engines"][engines.manifest_key(engine)]["table"]
    return [
        "-std=c++17",
        *target.build_flags,
        *target.arch,
        "-shared",
        "-fPIC",
        "-fvisibility=hidden",  # each library keeps its own models (layers_engine.cpp)
        *engines.flags(engine, alignment(target)),
        f"-DRTMB_MAX_BLOCK_SIZE={BLOCK_SIZE}",  # the processor's output buffers: one block
        f"-I{models_dir}",
        f'-DRTMB_MODEL_TABLE="{table_file}"',
    ]


def build_library(engine: str, models_dir: Path, target: targets.Target, work: Path) -> Path:
    doc = manifest.load(models_dir)
    key = engines.manifest_key(engine)
    names = manifest.engine_files(doc, key)
    manifest.verify(models_dir, doc, names)
    salt = "" if engines.is_generated(engine) else rtneural.require().commit
    return cxx.cached(
        f"liblayers-{engine}",
        LIBRARY,
        library_flags(engine, models_dir, target),
        [models_dir / n for n in names],
        work / "bin",
        salt,
        what=f"the {engine} layer library",
        suffix=".so",
    )


def build_program(work: Path) -> Path:
    return cxx.cached(
        "layers", PROGRAM, ["-std=c++17", "-O2", "-Wall", "-Wextra"], [], work / "bin", what="bench layers"
    )


def stream(command: list[str], on_line) -> list[dict]:
    """Run `command`, handing each JSON line it prints to `on_line` as it comes; all of them."""
    lines = []
    with tempfile.TemporaryFile(mode="w+") as err:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, text=True) as proc:
            for text in proc.stdout:
                if text.startswith("{"):
                    line = json.loads(text)
                    lines.append(line)
                    on_line(line)
        if proc.returncode != 0:
            err.seek(0)
            raise SuiteError(f"exit code {proc.returncode}: {err.read().strip()[-2000:]}", command[0])
    if not lines or lines[-1].get("type") != "done":
        raise SuiteError("stopped before it was done", command[0])
    return lines


def measure(program: Path, libraries: dict[str, Path], seconds: float, rounds: int, n_layers: int) -> list[dict]:
    """The timed run: every layer on every engine, interleaved, `rounds` rounds."""
    command = [str(program), "--seconds", str(seconds), "--rounds", str(rounds)]
    command += ["--block-size", str(BLOCK_SIZE), "--sample-rate", str(SAMPLE_RATE)]
    command += [f"{e}={p}" for e, p in libraries.items()]
    with tqdm(total=rounds * n_layers, desc="bench layers", unit="layer", disable=None) as bar:
        return stream(command, lambda line: bar.update(line["type"] == "round"))


def count(program: Path, libraries: dict[str, Path], n_runs: int) -> dict[tuple[str, str], float]:
    """Instructions per sample of each layer and engine: one run under callgrind, each layer and
    engine's COUNT_BLOCKS blocks its own dump (collection on only inside rtmb_layers_counted)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--collect-atstart=no"]
        command += ["--toggle-collect=rtmb_layers_counted", "--dump-after=rtmb_layers_counted"]
        command += [str(program), "--count", str(COUNT_BLOCKS), "--block-size", str(BLOCK_SIZE)]
        command += [f"{e}={p}" for e, p in libraries.items()]
        with tqdm(total=n_runs, desc="callgrind", unit="run", disable=None) as bar:
            lines = stream(command, lambda line: bar.update(line["type"] == "counted"))
        found = {}
        for line in lines:
            if line["type"] != "counted":
                continue
            dump = Path(f"{out}.{line['seq']}")
            totals = re.search(r"^totals:\s*(\d+)", dump.read_text(), re.M) if dump.exists() else None
            if totals is None:
                raise SuiteError(f"no callgrind dump {line['seq']} ({line['model']} / {line['engine']})", dump)
            found[(line["model"], line["engine"])] = int(totals.group(1)) / line["samples"]
        return found


def compiler_version(compiler: str = "g++") -> str:
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else compiler


def document(
    layers: list[Layer],
    lines: list[dict],
    counts: dict[tuple[str, str], float] | None,
    context: dict,
    now: datetime | None = None,
) -> dict:
    """The run's figures in the layers schema: per layer and engine the median ns per sample over
    the rounds (and their range), the real-time factor, instructions per sample and the ratio to
    RTNeural's best backend for that layer (the lowest median time of eigen, xsimd and stl)."""
    now = now or datetime.now(timezone.utc)
    meta = next(line for line in lines if line["type"] == "meta")
    sizes = {line["name"]: line for line in lines if line["type"] == "model"}
    per_round: dict[tuple[str, str], list[float]] = {}
    for line in lines:
        if line["type"] == "round":
            for engine, ns in line["ns_per_sample"].items():
                per_round.setdefault((line["model"], engine), []).append(ns)
    finite = {(line["model"], line["engine"]): line["finite"] for line in lines if line["type"] == "check"}
    rows = []
    for layer in layers:
        figures = {}
        for engine in context["engines"]:
            times = per_round.get((layer.name, engine))
            if not times:
                continue
            median = statistics.median(times)
            figures[engine] = {
                "ns_per_sample": median,
                "ns_per_sample_min": min(times),
                "ns_per_sample_max": max(times),
                "real_time_factor": 1e9 / (median * meta["sample_rate"]) if median > 0 else 0.0,
                "instructions_per_sample": None if counts is None else counts.get((layer.name, engine)),
                "output_finite": finite.get((layer.name, engine), False),
            }
        rtneural_ran = [e for e in rtneural.BACKENDS if e in figures]
        best = min(rtneural_ran, key=lambda e: figures[e]["ns_per_sample"]) if rtneural_ran else None
        for f in figures.values():
            f["vs_rtneural_best"] = f["ns_per_sample"] / figures[best]["ns_per_sample"] if best else None
        model = sizes.get(layer.name, {})
        rows.append(
            {**layer.describe(), "parameters": model.get("parameters", 0), "rtneural_best": best, "engines": figures}
        )
    doc = {
        "schema": SCHEMA_ID,
        "id": results.run_id(now, context["target"]["name"], "layers"),
        "created": now.isoformat(timespec="microseconds"),
        "target": context["target"],
        "config": {
            "seconds": context["seconds"],
            "rounds": meta["rounds"],
            "block_size": meta["block_size"],
            "sample_rate": meta["sample_rate"],
            "blocks_per_slice": meta["blocks_per_slice"],
            "warmup_blocks": meta["warmup_blocks"],
            "samples_per_engine": meta["rounds"] * meta["blocks_per_slice"] * meta["block_size"],
            "counted_blocks": COUNT_BLOCKS if counts is not None else 0,
            "seed": context["seed"],
            "layers": context["filter"],
        },
        "build": context["build"],
        "engines": context["engines"],
        "unavailable": context["unavailable"],
        "counter": context["counter"],
        "rtneural_commit": context["rtneural_commit"],
        "project_commit": context["project_commit"],
        "layers": rows,
    }
    validate(doc)
    return doc


def schema() -> dict:
    return json.loads(Path(__file__).with_name("layers.schema.json").read_text())


def validate(doc, source: str | Path = "layers result") -> None:
    jsonfile.check(doc, schema(), SCHEMA_ID, source)


def load(path: Path) -> dict:
    doc = jsonfile.read(path, results.MAX_BYTES, "layers result", "no such result")
    validate(doc, path)
    return doc


def write(doc: dict, out: Path = OUT_DIR) -> Path:
    """Save under the run's id, never replacing another result (bench/results.py's writer)."""
    return results.write(doc, out, "layers")


HEAD = ("layer", "engine", "ns/sample", "real-time x", "instr/sample", "vs RTNeural best")


def number(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.{digits}f}"


def rows(doc: dict) -> list[tuple]:
    out = []
    for layer in doc["layers"]:
        for engine, f in layer["engines"].items():
            best = " (best)" if engine == layer["rtneural_best"] else ""
            ratio = "-" if f["vs_rtneural_best"] is None else f"{f['vs_rtneural_best']:.2f}{best}"
            out.append(
                (
                    layer["name"],
                    engine,
                    number(f["ns_per_sample"]),
                    number(f["real_time_factor"], 0),
                    number(f["instructions_per_sample"], 0),
                    ratio,
                )
            )
    return out


def against_rtneural(doc: dict, engine: str) -> tuple[float, int, int] | None:
    """An engine's geometric mean of `vs_rtneural_best` over the layers (time on a timed target,
    instructions against STL's on a counted one), on how many of them it is below 1, and over how
    many; None where no layer has the ratio."""
    ratios = [
        layer["engines"][engine]["vs_rtneural_best"]
        for layer in doc["layers"]
        if engine in layer["engines"] and layer["engines"][engine]["vs_rtneural_best"]
    ]
    if not ratios:
        return None
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)), sum(r < 1 for r in ratios), len(ratios)


def summary(doc: dict) -> list[str]:
    """Per engine, the geometric mean over the layers of its time against RTNeural's best."""
    lines = []
    for engine in doc["engines"]:
        if figures := against_rtneural(doc, engine):
            mean, below, n = figures
            lines.append(f"  {engine}: {mean:.2f}x RTNeural's best time (faster on {below} of {n} layers)")
    return ["geometric mean over the layers:", *lines] if lines else []


def render(doc: dict) -> str:
    c = doc["config"]
    head = (
        f"{len(doc['layers'])} layers x {len(doc['engines'])} engines on {doc['target']['cpu']}: "
        f"{c['samples_per_engine'] / c['sample_rate']:.2f} s of audio each at {c['sample_rate']} Hz in blocks of "
        f"{c['block_size']}, interleaved over {c['rounds']} rounds (medians); instructions: "
        f"{doc['counter'] or 'not counted'}"
    )
    parts = [head, table.render(rows(doc), HEAD), *summary(doc)]
    parts += [f"not run: {e}: {why}" for e, why in doc["unavailable"].items()]
    parts += rtneural_bench.lines(doc)
    return "\n".join(parts)


def parse_terms(values: list[str] | None) -> list[str]:
    return [t.strip() for v in values or [] for t in v.split(",") if t.strip()]


def run(args) -> int:
    """`bench layers`: export the chosen layers, build every engine that builds here, time them
    interleaved, count instructions, save the result and print the table; exit 1 if any engine gave
    a NaN or infinite output."""
    terms = parse_terms(args.layers)
    every, seed = load_set(args.set)
    chosen = select(every, terms)
    results.check_writable(args.out)
    target = host()
    names, unavailable = available()
    counting = not args.no_callgrind and callgrind.available()
    if not args.no_callgrind and not counting:
        print("warning: valgrind not found (apt-get install valgrind): no instruction counts", file=sys.stderr)
    work = Path(args.work)
    claim(work, {layer.name for layer in every})
    print(f"exporting {len(chosen)} layer models into {work / 'models'} (python -m exporter import)", file=sys.stderr)
    models_dir = export(chosen, seed, work)
    libraries = {}
    for engine in tqdm(names, desc="build", unit="engine", disable=None):
        libraries[engine] = build_library(engine, models_dir, target, work)
    program = build_program(work)
    lines = measure(program, libraries, args.seconds, args.rounds, len(chosen))
    counts = count(program, libraries, len(chosen) * len(names)) if counting else None
    found = rtneural.find()
    backends = [e for e in names if e in rtneural.BACKENDS]  # RTNeural's own benchmark, beside ours
    own = None
    if backends and not args.no_rtneural_bench:
        build_flags = [*target.build_flags, *target.arch]
        own = rtneural_bench.measure(chosen, backends, build_flags, alignment(target), work, args.seconds)
    context = {
        "target": {
            "name": target.name,
            "env": target.env,
            "board": target.board,
            "cpu": results.host_cpu(),
            "run": target.run,
        },
        "seconds": args.seconds,
        "seed": seed,
        "filter": terms,
        "build": {
            "compiler": compiler_version(target.compiler),
            "flags": [*target.build_flags, *target.arch, "-shared", "-fPIC", "-fvisibility=hidden"],
            "alignment": alignment(target),
        },
        "engines": names,
        "unavailable": unavailable,
        "counter": callgrind.version() if counting else None,
        "rtneural_commit": found.commit if found else None,
        "project_commit": git.project_commit(),
    }
    doc = document(chosen, lines, counts, context)
    if own is not None:
        doc["rtneural_layer_bench"] = rtneural_bench.beside(own, doc)
        validate(doc)
    path = write(doc, args.out)
    print(render(doc))
    print(f"saved {path}")
    bad = [
        f"{layer['name']} / {e}"
        for layer in doc["layers"]
        for e, f in layer["engines"].items()
        if not f["output_finite"]
    ]
    if bad:
        print(f"error: NaN or infinite outputs: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0
