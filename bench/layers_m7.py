"""`bench layers --target cortex-m7`: the layer set counted on the Cortex-M7, engine by engine.

The layers are exported as for x86 (bench/layers.py: `python -m exporter import`, a subprocess),
with one block's worth of test vectors, and each engine that runs on the target (its
`custom_engines` in platformio.ini that build here: the generated engine at float32, float16 and
int8, and RTNeural's STL backend where RTNeural is found) is built through the target's PlatformIO
environment, the same harness and build `bench run` uses (bench/build.py), and run under QEMU
system emulation with `-icount shift=0` (bench/harness.py). The harness checks every layer
against its test vectors on the target, then runs blocks of 512 samples; with one instruction per
virtual nanosecond its times are instruction counts. The figures are instructions per sample,
counted (QEMU -icount): QEMU does not model the M7's timing, so there are no times here; `bench
boards` turns the counts into each board's estimated share of its CPU.

The whole set runs in one image per engine where it fits the target's memories (the linker
script's, read before anything is exported); a layer too large for them on its own is skipped
with the reason, and a set too large for one image is split into several, each exported and built
on its own. The result is saved in the layers schema (rt-music-bench/layers/1) with
`timing: counted`: ns fields null, `vs_rtneural_best` the ratio of instructions to RTNeural STL's.
"""

from __future__ import annotations

import math
import re
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from tqdm import tqdm

from bench import harness, layers, results, roofline, targets
from bench.build import build
from common import engines, git, manifest, rtneural, table
from common.errors import SuiteError

WARMUP_BLOCKS = 1
# The output block the models' tables are built for: the block the harness runs (the x86 libraries
# are built the same way). The tables' default, 4,096, takes 16 KB per output unit in external RAM:
# 21 MB for the whole set, more than the mps2-an500's 16 MB.
BLOCK_FLAGS = (f"-DRTMB_MAX_BLOCK_SIZE={layers.BLOCK_SIZE}",)
# Kept free in each memory for the harness itself: its code, newlib, .data/.bss, the 64 KB stack
# and the heap (a three-layer image: 30 KB of code, 66 KB of RAM with the stack).
RESERVE = 256 * 1024
CODE_BYTES = 16 * 1024  # per layer model, generously (the whole set: 2.8 KB each on stl, 1 KB generated)


def counted(name: str) -> targets.Target | None:
    """The counted target `--target` names, or None for this machine (the x86 run, bench/layers.py);
    any other target is an error."""
    target = targets.get(name)
    if target.run == "native":
        return None
    if target.run != "qemu-system":
        known = [t.name for t in targets.load().values() if t.run in ("native", "qemu-system")]
        raise SuiteError(
            f"argument --target: bench layers runs on this machine or a counted target; give {', '.join(known)}"
        )
    return target


@dataclass(frozen=True)
class Memory:
    """Where a layer model's parts go in the target's image, and how much each memory can take."""

    budget: dict[str, int]  # memory -> bytes the models may take (its size less RESERVE)
    code: str
    constants: str  # weights and test vectors
    objects: str  # state, output block, RTNeural's copy of the weights, the harness's timings
    max_blocks: int  # blocks the harness records (4 bytes each per model)


def memory(target: targets.Target) -> Memory:
    """The target's memories from its linker script (custom_ldscript): their sizes, and where the
    constant arrays (.weights with -DBENCH_EXTERNAL_MEMORY=1, else .rodata in .text) and the model
    objects (.ext_bss, else .bss) are placed."""
    from platformio.project.config import ProjectConfig

    script = targets.INI.parent / ProjectConfig(str(targets.INI)).get(f"env:{target.env}", "custom_ldscript")
    text = script.read_text()
    scale = {"": 1, "K": 1024, "M": 1024 * 1024}
    sizes = {
        name: int(n) * scale[unit.upper()]
        for name, n, unit in re.findall(r"^\s*(\w+)\s*\([rwx!]+\)\s*:.*LENGTH\s*=\s*(\d+)\s*([KkMm]?)", text, re.M)
    }
    placed = dict(re.findall(r"^\s*(\.[\w.]+)[^{}]*\{[^{}]*\}\s*>\s*(\w+)", text, re.M))
    external = "-DBENCH_EXTERNAL_MEMORY=1" in target.build_flags
    where = {
        "code": placed.get(".text"),
        "constants": placed.get(".weights" if external else ".text"),
        "objects": placed.get(".ext_bss" if external else ".bss"),
    }
    if not set(where.values()) <= set(sizes):  # None among them: a section not placed
        raise SuiteError("no MEMORY sizes and .text, .bss (or .weights, .ext_bss) placements found", script)
    return Memory({m: max(0, n - RESERVE) for m, n in sizes.items()}, **where, max_blocks=target.max_blocks)


def parameters(layer: layers.Layer) -> int:
    return sum(math.prod(shape) for shape in layer.weight_shapes())


def need(layer: layers.Layer, engine: str, mem: Memory) -> Counter:
    """Bytes a layer model takes in each memory on `engine`, estimated from its sizes a little
    above what the linker places (the whole set in external RAM: 8.33 MB estimated, 8.28 MB linked
    on float32, 8.89 and 8.85 MB on stl): weights at the engine's precision (int8 with a float
    scale per output row), one block of test vectors, code; state (gates, a convolution's history),
    the output block, the harness's timings and, for RTNeural, its float copy of the weights."""
    n = parameters(layer)
    vectors = layers.BLOCK_SIZE * (layer.inputs + layer.units) * 4
    weights = n * roofline.BYTES_PER_WEIGHT[engines.dtype(engine)] + 16 * layer.units
    state = 8 * layer.units + 2 * (layer.kernel_size * layer.dilation + 1) * layer.inputs
    objects = 4 * (state + layers.BLOCK_SIZE * layer.units + mem.max_blocks)
    objects += 0 if engines.is_generated(engine) else 4 * n
    out = Counter({mem.code: CODE_BYTES})
    out[mem.constants] += weights + vectors
    out[mem.objects] += objects
    return out


def plan(chosen: list[layers.Layer], names: list[str], mem: Memory) -> tuple[list[list[layers.Layer]], dict[str, str]]:
    """The layers in images that fit the target's memories on every engine (in set order, a new
    image when the next layer would not fit), and the layers too large for one image on their own,
    each with why."""
    images: list[list[layers.Layer]] = []
    skipped: dict[str, str] = {}
    used: Counter = Counter()
    for layer in chosen:
        size: Counter = Counter()
        for engine in names:
            size |= need(layer, engine, mem)  # the largest engine's need, memory by memory
        over = [m for m, n in size.items() if n > mem.budget[m]]
        if over:
            m = over[0]
            skipped[layer.name] = (
                f"needs about {size[m] / 1024:,.0f} KB of {m}, which has {mem.budget[m] / 1024:,.0f} KB "
                f"for models (weights, {layers.BLOCK_SIZE} samples of test vectors, state, an output block)"
            )
            continue
        if not images or any(used[m] + n > mem.budget[m] for m, n in size.items()):
            images.append([])
            used = Counter()
        images[-1].append(layer)
        used += size
    return images, skipped


def engines_for(target: targets.Target) -> tuple[list[str], dict[str, str]]:
    """The layer engines that run on the target and build here, and why each other one does not."""
    ok, why = [], {}
    for engine in layers.ENGINES:
        reason = engines.available(engine)
        if engine not in target.engines:
            reason = f"not a {target.name} engine (custom_engines in platformio.ini)"
        if reason is None:
            ok.append(engine)
        else:
            why[engine] = reason
    return ok, why


def run_image(target, names, models_dir: Path, root: Path, bar) -> dict[tuple[str, str], dict]:
    """Build and run one image on each engine that runs some of its layers: per (layer, engine) the
    instructions per sample (the mean of the counted blocks), parity against the test vectors and
    the manifest's tolerance, and the parameters."""
    doc = manifest.load(models_dir)
    found = {}
    for engine in names:
        key = engines.manifest_key(engine)
        if key not in doc["engines"]:
            bar.update(2)
            continue
        bar.set_postfix_str(f"{engine}: build")
        built = build(target, engine, models_dir, root / engine, BLOCK_FLAGS)
        bar.update()
        bar.set_postfix_str(f"{engine}: run")
        args = ["--blocks", str(layers.COUNT_BLOCKS), "--warmup", str(WARMUP_BLOCKS)]
        args += ["--block-size", str(layers.BLOCK_SIZE), "--sample-rate", str(layers.SAMPLE_RATE)]
        output = harness.parse(harness.run(target, built.program, args), str(built.program))
        bar.update()
        for warning in output["warnings"]:
            tqdm.write(f"warning: {target.name} / {engine}: the harness says: {warning}", file=sys.stderr)
        tolerance = {m["name"]: m["engines"][key]["tolerance"] for m in doc["models"] if key in m["engines"]}
        for name, m in output["models"].items():
            found[(name, engine)] = {
                # -icount shift=0: one instruction per virtual nanosecond, so 1 us is 1,000
                "instructions": m["latency"]["mean"] * 1000 / layers.BLOCK_SIZE,
                "parity": m["parity"]["max_abs_error"],
                "tolerance": tolerance[name],
                "parameters": m["parameters"],
            }
    return found


def document(chosen: list[layers.Layer], found: dict, context: dict, now: datetime | None = None) -> dict:
    """The counted figures in the layers schema: instructions per sample per layer and engine, the
    ratio to RTNeural STL's (the only RTNeural backend on the target), no times."""
    now = now or datetime.now(timezone.utc)
    rows, skipped = [], dict(context["skipped"])
    for layer in chosen:
        if layer.name in skipped:
            continue
        mine = {e: found[(layer.name, e)] for e in context["engines"] if (layer.name, e) in found}
        if not mine:
            skipped[layer.name] = f"no engine of {context['target']['name']} runs it"
            continue
        best = "stl" if "stl" in mine else None
        figures = {}
        for engine, f in mine.items():
            finite = math.isfinite(f["parity"])
            figures[engine] = {
                "ns_per_sample": None,
                "ns_per_sample_min": None,
                "ns_per_sample_max": None,
                "real_time_factor": None,
                "instructions_per_sample": f["instructions"],
                "vs_rtneural_best": f["instructions"] / mine[best]["instructions"] if best else None,
                "output_finite": finite,
                "parity_max_abs_error": f["parity"] if finite else None,
                "parity_ok": finite and f["parity"] <= f["tolerance"],
            }
        weights = next(iter(mine.values()))["parameters"]
        rows.append({**layer.describe(), "parameters": weights, "rtneural_best": best, "engines": figures})
    if not rows:
        raise SuiteError("no layer ran: " + "; ".join(f"{n}: {why}" for n, why in skipped.items()))
    samples = layers.COUNT_BLOCKS * layers.BLOCK_SIZE
    doc = {
        "schema": layers.SCHEMA_ID,
        "id": results.run_id(now, context["target"]["name"], "layers"),
        "created": now.isoformat(timespec="microseconds"),
        "timing": "counted",
        "target": context["target"],
        "config": {
            "seconds": samples / layers.SAMPLE_RATE,
            "rounds": 1,
            "block_size": layers.BLOCK_SIZE,
            "sample_rate": layers.SAMPLE_RATE,
            "blocks_per_slice": layers.COUNT_BLOCKS,
            "warmup_blocks": WARMUP_BLOCKS,
            "samples_per_engine": samples,
            "counted_blocks": layers.COUNT_BLOCKS,
            "images": context["images"],
            "seed": context["seed"],
            "layers": context["filter"],
        },
        "build": context["build"],
        "engines": context["engines"],
        "unavailable": context["unavailable"],
        "skipped": skipped,
        "counter": context["counter"],
        "rtneural_commit": context["rtneural_commit"],
        "project_commit": context["project_commit"],
        "layers": rows,
    }
    layers.validate(doc)
    return doc


HEAD = ("layer", "engine", "instr/sample", "vs RTNeural stl", "parity")


def rows(doc: dict) -> list[tuple]:
    out = []
    for layer in doc["layers"]:
        for engine, f in layer["engines"].items():
            ratio = f["vs_rtneural_best"]
            error = f.get("parity_max_abs_error")
            parity = "NaN" if error is None else f"{error:.1e}" + ("" if f.get("parity_ok", True) else " FAIL")
            out.append(
                (
                    layer["name"],
                    engine,
                    layers.number(f["instructions_per_sample"], 0),
                    "-" if ratio is None else f"{ratio:.2f}",
                    parity,
                )
            )
    return out


def summary(doc: dict) -> list[str]:
    """Per engine, the geometric mean over the layers of its instructions against RTNeural STL's."""
    lines = []
    for engine in doc["engines"]:
        if engine != "stl" and (figures := layers.against_rtneural(doc, engine)):
            mean, below, n = figures
            lines.append(f"  {engine}: {mean:.2f}x RTNeural stl's instructions (fewer on {below} of {n})")
    return ["geometric mean over the layers:", *lines] if lines else []


def render(doc: dict) -> str:
    c = doc["config"]
    head = (
        f"{len(doc['layers'])} layers x {len(doc['engines'])} engines on {doc['target']['board']}: "
        f"instructions per sample counted (QEMU -icount), {c['counted_blocks']} blocks of {c['block_size']} "
        f"samples after {c['warmup_blocks']} uncounted, in {c['images']} image(s); no times (QEMU does not "
        f"model the M7's timing: bench boards estimates each board's share)"
    )
    parts = [textwrap.fill(head, 120), table.render(rows(doc), HEAD), *summary(doc)]
    parts += [f"skipped {name}: {why}" for name, why in doc["skipped"].items()]
    parts += [f"not run: {e}: {why}" for e, why in doc["unavailable"].items()]
    return "\n".join(parts)


def run(args, target: targets.Target) -> int:
    """`bench layers --target <counted target>`: plan the images, export, build and run each
    engine under QEMU, save the result and print the table; exit 1 when a layer's output is not
    finite or misses its parity tolerance on the target."""
    terms = layers.parse_terms(args.layers)
    every, seed = layers.load_set(args.set)
    chosen = layers.select(every, terms)
    missing = target.missing()
    if missing:
        raise SuiteError(f"target {target.name} needs {', '.join(missing)}")
    results.check_writable(args.out)
    names, unavailable = engines_for(target)
    images, skipped = plan(chosen, names, memory(target))
    for name, why in skipped.items():
        tqdm.write(f"skipped {name}: {why}", file=sys.stderr)
    if not images:
        raise SuiteError(f"no layer of the choice fits {target.name}'s memories", args.set)
    work = Path(args.work)
    seconds = layers.BLOCK_SIZE / layers.SAMPLE_RATE  # one block of test vectors: the harness's least
    found: dict = {}
    with tqdm(total=2 * len(images) * len(names), desc=f"bench layers {target.name}", unit="step", disable=None) as bar:
        for k, image in enumerate(images, 1):
            folder = work if len(images) == 1 else work / f"{target.name}-image{k}"
            layers.claim(folder, {layer.name for layer in every})
            bar.set_postfix_str(f"exporting {len(image)} layer models (python -m exporter import)")
            models_dir = layers.export(image, seed, folder, seconds)
            found |= run_image(target, names, models_dir, work / "pio" / f"{target.name}-image{k}", bar)
    found_rt = rtneural.find()
    context = {
        "target": {
            "name": target.name,
            "env": target.env,
            "board": target.board,
            "cpu": cpu(target),
            "run": target.run,
        },
        "filter": terms,
        "seed": seed,
        "images": len(images),
        "build": {
            "compiler": layers.compiler_version(target.compiler),
            "flags": [*target.build_flags, *target.arch, *BLOCK_FLAGS],
            "alignment": layers.alignment(target),
        },
        "engines": names,
        "unavailable": unavailable,
        "skipped": skipped,
        "counter": targets.emulator_version(target),
        "rtneural_commit": found_rt.commit if found_rt and "stl" in names else None,
        "project_commit": git.project_commit(),
    }
    doc = document(chosen, found, context)
    path = layers.write(doc, args.out)
    print(render(doc))
    print(f"saved {path}")
    bad = [
        f"{layer['name']} / {e}"
        for layer in doc["layers"]
        for e, f in layer["engines"].items()
        if not (f["output_finite"] and f["parity_ok"])
    ]
    if bad:
        print(f"error: NaN outputs or parity above tolerance on {target.name}: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


def cpu(target: targets.Target) -> str:
    """The core the target's flags build for (-mcpu=cortex-m7)."""
    return next((a.split("=", 1)[1] for a in target.arch if a.startswith("-mcpu=")), target.name)
