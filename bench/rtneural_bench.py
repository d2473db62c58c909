"""RTNeural's own layer benchmark beside `bench layers`: bench/layer_bench.cpp from the checkout
RTNeural is found in, unchanged, compiled per backend with the flags the suite builds RTNeural's
engines with (common/rtneural.py; the host target's -O3 -march=x86-64-v3 and alignment), run for
each layer of the set it can make, and its real-time factor set beside ours for the same backend.

The two do not time the same code, so their ratio is a check of scale, not 1.0 by construction:
layer_bench times RTNeural's run-time layers (`GRULayer<double>`... through the virtual
`Layer<double>::forward`, sizes known only at run time) in double precision, one sample per call,
on white noise, in one run per invocation (we take the median of REPEATS); `bench layers` times the
`ModelT<float>` RTNeural's engines are (sizes fixed at compile time), a block per call, interleaved
with the other engines. layer_bench's templated (ModelT) path is behind MODELT_AVAILABLE, which
neither RTNeural's CMake nor its headers define, and which does not compile at the pinned commit
(it names FastTanhT, which RTNeural no longer has).
"""

from __future__ import annotations

import math
import re
import signal
import statistics
import subprocess
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from common import cxx, rtneural, table
from common.errors import SuiteError

if TYPE_CHECKING:
    from bench.layers import Layer

SOURCE = Path("bench") / "layer_bench.cpp"  # in RTNeural's checkout
HELPERS = ("bench_utils.hpp", "layer_creator.hpp", "templated_bench.hpp")  # what it includes, beside it
ALIGNED_NEW = Path(__file__).with_name("aligned_new.cpp")  # why: there
REPEATS = 3
ACTIVATIONS = ("tanh", "relu", "sigmoid", "softmax")  # the activations layer_creator.hpp makes
FIGURE = re.compile(r"^Processed \S+ seconds of signal in \S+ seconds\s*\n\s*(\S+)x real-time", re.M)


def arguments(layer: Layer) -> list[str] | None:
    """layer_bench's <layer_type> <in_size> [<out_size>] for a layer of the set, or None where it
    makes no such layer: its conv1d always has a kernel of in_size - 1 and dilation 1, and of the
    activations it has no elu."""
    if layer.type in ("dense", "gru", "lstm"):
        return [layer.type, str(layer.inputs), str(layer.units)]
    if layer.type == "activation" and layer.activation in ACTIVATIONS:
        return [layer.activation, str(layer.units)]
    if layer.type == "conv1d" and layer.kernel_size == layer.inputs - 1 and layer.dilation == 1:
        return ["conv1d", str(layer.inputs), str(layer.units)]
    return None


def flags(target_flags: list[str], alignment: int) -> list[str]:
    """What every backend's build shares (the backend adds RTNeural's defines and includes)."""
    return ["-std=c++17", *target_flags, f"-DRTMB_NEW_ALIGNMENT={alignment}"]


def build(backend: str, target_flags: list[str], alignment: int, work: Path) -> Path:
    found = rtneural.require()
    source = found.root / SOURCE
    if not source.is_file():
        raise SuiteError(f"no {SOURCE} in this RTNeural checkout (RTNeural's own layer benchmark)", found.root)
    command = [
        *flags(target_flags, alignment),
        *found.flags(backend, alignment),
        f"-isystem{found.root / 'RTNeural'}",  # bench/CMakeLists.txt: include_directories(../RTNeural)
        str(ALIGNED_NEW),
    ]
    return cxx.cached(
        f"rtneural-layer-bench-{backend}",
        source,
        command,
        [ALIGNED_NEW, *(source.with_name(h) for h in HELPERS if source.with_name(h).exists())],
        work / "bin",
        found.commit,
        what=f"RTNeural's {SOURCE} ({backend})",
    )


def parse(text: str, source: str | Path = "layer_bench") -> float:
    """The real-time factor layer_bench prints ("Processed 5 seconds of signal in 0.01 seconds",
    then "500x real-time"); its first, the run-time layer's, where a build with MODELT_AVAILABLE
    would print a second."""
    found = FIGURE.search(text)
    try:
        factor = float(found.group(1)) if found else math.nan
    except ValueError:
        factor = math.nan
    if not factor > 0 or math.isinf(factor):
        tail = text.strip().splitlines()[-1] if text.strip() else "nothing"
        raise SuiteError(f"no real-time factor in RTNeural's layer_bench output (its last line: {tail})", source)
    return factor


def run_once(binary: Path, args: list[str], seconds: float) -> float:
    done = subprocess.run([str(binary), args[0], f"{seconds:g}", *args[1:]], capture_output=True, text=True)
    if done.returncode != 0:
        code = done.returncode
        how = f"killed by {signal.strsignal(-code) or -code}" if code < 0 else f"exit code {code}"
        last = (done.stdout + done.stderr).strip().splitlines()[-1:]
        raise SuiteError(f"{' '.join(args)}: {how}" + (f" ({last[0]})" if last else ""), binary)
    return parse(done.stdout, binary)


def measure(
    chosen: list[Layer],
    backends: list[str],
    target_flags: list[str],
    alignment: int,
    work: Path,
    seconds: float,
    repeats: int = REPEATS,
) -> dict:
    """layer_bench for every chosen layer it makes, on every backend, `repeats` times, the backends
    and repeats interleaved as `bench layers` interleaves its engines; the median real-time factor.
    A run that fails is recorded with why (its layer and backend are not run again), not raised:
    RTNeural's benchmark failing must not cost the run of ours."""
    found = rtneural.require()
    covered = [(layer, a) for layer in chosen if (a := arguments(layer)) is not None]
    binaries = {}
    for backend in tqdm(backends, desc="build layer_bench", unit="backend", disable=None):
        binaries[backend] = build(backend, target_flags, alignment, work)
    runs: dict[tuple[str, str], list[float]] = {(layer.name, b): [] for layer, _ in covered for b in backends}
    errors: dict[tuple[str, str], str] = {}
    with tqdm(total=len(runs) * repeats, desc="RTNeural layer_bench", unit="run", disable=None) as bar:
        for _ in range(repeats):
            for layer, a in covered:
                for backend in backends:
                    key = (layer.name, backend)
                    if key not in errors:
                        try:
                            runs[key].append(run_once(binaries[backend], a, seconds))
                        except SuiteError as exc:
                            errors[key] = exc.problem
                    bar.update()
    return {
        "source": SOURCE.as_posix(),
        "rtneural_commit": found.commit,
        "flags": flags(target_flags, alignment),
        "seconds": seconds,
        "repeats": repeats,
        "layers": [
            {
                "name": layer.name,
                "backend": backend,
                "arguments": a,
                "runs": runs[(layer.name, backend)],
                "real_time_factor": None
                if (layer.name, backend) in errors
                else statistics.median(runs[(layer.name, backend)]),
                "error": errors.get((layer.name, backend)),
            }
            for layer, a in covered
            for backend in backends
        ],
        "not_covered": [layer.name for layer in chosen if arguments(layer) is None],
    }


def beside(section: dict, doc: dict) -> dict:
    """`section` with our real-time factor for each layer and backend (from the layers result
    `doc`) and the ratio, ours over layer_bench's."""
    ours = {(layer["name"], e): f["real_time_factor"] for layer in doc["layers"] for e, f in layer["engines"].items()}
    for row in section["layers"]:
        mine = ours.get((row["name"], row["backend"]))
        row["ours_real_time_factor"] = mine
        row["ratio"] = mine / row["real_time_factor"] if mine and row["real_time_factor"] else None
    return section


HEAD = ("layer", "backend", "layer_bench real-time x", "ours real-time x", "ours / layer_bench")
NOTE = (
    "layer_bench times RTNeural's run-time Layer<double> (virtual forward, sizes at run time), one sample "
    "per call; ours the ModelT<float> RTNeural's engines are, a block per call: a ratio above 1 is ours "
    "faster, by what the two measure, not a disagreement in timing"
)


def factor(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def rows(section: dict) -> list[tuple]:
    return [
        (
            r["name"],
            r["backend"],
            factor(r["real_time_factor"]) if r["error"] is None else f"failed: {r['error']}",
            factor(r["ours_real_time_factor"]),
            "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
        )
        for r in section["layers"]
    ]


def means(section: dict) -> dict[str, tuple[float, int]]:
    """Per backend, the geometric mean of the ratio over the layers, and how many."""
    out = {}
    for backend in dict.fromkeys(r["backend"] for r in section["layers"]):
        ratios = [r["ratio"] for r in section["layers"] if r["backend"] == backend and r["ratio"]]
        if ratios:
            out[backend] = (math.exp(sum(map(math.log, ratios)) / len(ratios)), len(ratios))
    return out


def lines(doc: dict) -> list[str]:
    """The comparison as `bench layers` prints it: nothing where layer_bench did not run."""
    section = doc.get("rtneural_layer_bench")
    if not section:
        return []
    head = (
        f"RTNeural's own {section['source']} (RTNeural commit {section['rtneural_commit'][:12]}, median of "
        f"{section['repeats']} runs of {section['seconds']:g} s) beside ours, same backend:"
    )
    out = [head, textwrap.fill(NOTE + ".", 110, initial_indent="  ", subsequent_indent="  ")]
    out.append(table.render(rows(section), HEAD))
    out += [
        f"  {backend}: ours / layer_bench {mean:.2f} (geometric mean over {n} layers)"
        for backend, (mean, n) in means(section).items()
    ]
    if section["not_covered"]:
        out.append(f"not in layer_bench: {', '.join(section['not_covered'])}")
    return out
