"""Building the harness for a target and engine through PlatformIO (the same `pio run -e <env>` a
user runs), in a build folder per engine so switching engines reuses each one's objects."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench import roofline
from bench.targets import Target
from common import atomic, engines, jsonfile, layout, manifest
from common.errors import SuiteError
from common.layout import PROJECT

# Sections of an ELF that hold no part of the program as loaded: debug data, notes, attributes.
NOT_LOADED = (
    ".debug",
    ".comment",
    ".note",
    ".ARM.attributes",
    ".gnu.attributes",
    ".stab",
    ".symtab",
    ".strtab",
    ".shstrtab",
    ".gnu_debuglink",
)
QUIET_PIO = {"PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No", "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true"}
PIO_DIR = PROJECT / ".pio"  # PlatformIO's build folders, unless --build-dir names another place


@dataclass
class Build:
    program: Path
    seconds: float
    reused: bool  # nothing had changed: the earlier program was kept
    compiler: str
    flags: list[str]
    sizes: dict  # text / data / bss from the toolchain's `size`, and every section's size
    symbols: dict  # the linked image's symbols summed per model (symbols())


def build_dir(engine: str) -> Path:
    return PIO_DIR / f"build-{engine}"


def program_path(target: Target, engine: str, root: Path | None = None) -> Path:
    suffix = ".elf" if target.os == "baremetal" else ""
    return (root or build_dir(engine)) / target.env / f"program{suffix}"


def pio_env(engine: str, root: Path, models_dir: Path | None, extra_flags: tuple[str, ...] = ()) -> dict:
    env = {**os.environ, **QUIET_PIO, "RTMB_ENGINE": engine, "PLATFORMIO_BUILD_DIR": str(root)}
    if models_dir is not None:
        env["RTMB_MODELS_DIR"] = str(Path(models_dir).resolve())
    if extra_flags:  # PlatformIO appends these to the environment's build_flags
        env["PLATFORMIO_BUILD_FLAGS"] = " ".join([env.get("PLATFORMIO_BUILD_FLAGS", ""), *extra_flags]).strip()
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")  # the pio of this environment
    return env


def picked_export(models_dir: Path, names: list[str], out: Path) -> Path:
    """An export folder of only `names` of `models_dir` (`bench run --models`), so the harness built
    from it holds those models alone: written by the exporter's own command (`python -m exporter
    subset`, a subprocess: bench never imports the exporter), every model's header byte for byte
    the one in models_dir, the model table, umbrella and test vectors of these models only. Made
    again only when models_dir's manifest (which hashes every file of it) has changed."""
    source = Path(models_dir).resolve()
    made_from = out.with_name(f"{out.name}.source.json")  # beside the folder: the exporter replaces it whole
    stamp = {"source": str(source), "manifest_sha256": manifest.sha256(source / manifest.NAME), "models": names}
    try:
        if jsonfile.read(made_from, jsonfile.TABLE_BYTES, "subset stamp") == stamp and (out / manifest.NAME).is_file():
            return out
    except SuiteError:
        pass  # none yet, or unreadable: made anew
    command = [sys.executable, "-m", "exporter", "subset", "--from", str(source), "--models", ",".join(names)]
    done = subprocess.run([*command, "--out", str(out)], cwd=PROJECT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SuiteError(f"python -m exporter subset failed: {(done.stderr or done.stdout).strip()[-2000:]}", source)
    atomic.write_json(made_from, stamp)
    return out


def build(
    target: Target,
    engine: str,
    models_dir: Path | None = None,
    root: Path | None = None,
    extra_flags: tuple[str, ...] = (),
) -> Build:
    missing = target.missing()
    if missing:
        raise SuiteError(f"cannot build {target.name}: missing {', '.join(missing)}; make setup installs them")
    engine_flags = engines.flags(engine)
    models_dir = Path(models_dir or layout.MODELS_DIR)
    doc = manifest.load(models_dir)
    key = engines.manifest_key(engine)
    manifest.verify(models_dir, doc, [*manifest.engine_files(doc, key), doc["engines"][key]["vectors"]])
    root = root or build_dir(engine)
    program = program_path(target, engine, root)
    before = program.stat().st_mtime_ns if program.exists() else None
    t0 = time.time()
    done = subprocess.run(
        ["pio", "run", "-e", target.env],
        cwd=PROJECT,
        env=pio_env(engine, root, models_dir, extra_flags),
        capture_output=True,
        text=True,
    )
    seconds = time.time() - t0
    if done.returncode != 0:
        raise failure(target, engine, done.stdout + done.stderr)
    return Build(
        program=program,
        seconds=round(seconds, 2),
        reused=before == program.stat().st_mtime_ns,
        compiler=compiler_version(target),
        flags=[*target.build_flags, *engine_flags, *extra_flags],
        sizes=sizes(target, program),
        symbols=symbols(target, program, model_scopes(doc)),
    )


# GNU ld's words when the image does not fit a memory region of its linker script (binutils quotes
# a name as `FLASH'; some builds as 'FLASH'):
#   ld: program.elf section `.text' will not fit in region `FLASH'
#   ld: region `FLASH' overflowed by 2374976 bytes
OVERFLOWED = re.compile(r"region [`']([^`']+)' overflowed by (\d+) bytes")
WILL_NOT_FIT = re.compile(r"section [`']([^`']+)' will not fit in region [`']([^`']+)'")


def overflows(output: str) -> dict[str, tuple[int, list[str]]]:
    """The regions the linker says overflowed, in the order it says so: {region: (bytes over, the
    sections that did not fit in it)}; empty where the build failed for another reason."""
    sections: dict[str, list[str]] = {}
    for section, region in WILL_NOT_FIT.findall(output):
        sections.setdefault(region, []).append(section)
    return {region: (int(over), sections.get(region, [])) for region, over in OVERFLOWED.findall(output)}


def failure(target: Target, engine: str, output: str) -> SuiteError:
    """A failed `pio run`, as the user's error: where the image does not fit its memory, one line
    saying which region overflowed by how much and what to do; otherwise the compiler's errors
    (the linker's own last words, `collect2: error: ld returned 1 exit status`, say neither)."""
    ini = PROJECT / "platformio.ini"
    over = overflows(output)
    if not over:
        errors = [line for line in output.splitlines() if "rror" in line]
        return SuiteError(f"pio run -e {target.env} (engine {engine}) failed:\n" + "\n".join(errors[-15:]), ini)
    regions = "; ".join(
        f"region {region} overflowed by {n:,} bytes" + (f" ({', '.join(secs)})" if secs else "")
        for region, (n, secs) in over.items()
    )
    size = roofline.BYTES_PER_WEIGHT
    smaller = [e for e in target.engines if size[engines.dtype(e)] < size[engines.dtype(engine)]]
    precision = f"a smaller precision (--engine {' or '.join(smaller)}), " if smaller else ""
    return SuiteError(
        f"{target.name} (env:{target.env}) with engine {engine} does not fit its memory: {regions}; "
        f"try {precision}fewer models (--models) or a target with more memory (bench targets)",
        ini,
    )


def compiler_version(target: Target) -> str:
    out = subprocess.run([target.compiler, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 else target.compiler


def sizes(target: Target, program: Path) -> dict:
    """Berkeley-format totals (text, data, bss) and, from `size -A`, every allocated section, so
    where the weights went (.rodata in flash, .weights in external memory) shows."""
    tool = f"{target.toolchain}size"
    out = subprocess.run([tool, str(program)], capture_output=True, text=True, check=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    sections = {}
    listing = subprocess.run([tool, "-A", str(program)], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        parts = line.split()
        loaded = len(parts) == 3 and parts[0].startswith(".") and not parts[0].startswith(NOT_LOADED)
        if loaded and parts[1].isdigit() and int(parts[1]):
            sections[parts[0]] = int(parts[1])
    return {"text": text, "data": data, "bss": bss, "sections": sections}


# nm's symbol types: functions; initialised objects (u: a C++17 inline variable, GNU's unique
# global); zeroed ones
CODE, CONSTANT, STATE = "TtWw", "VvRrDdu", "Bb"
# The class whose noinline `<name>_forward` member functions run each model (exporter/tables.py):
# where a model's own forward() is inlined, its code is there.
PROCESSOR = ("models", "Processor")


def model_scopes(doc: dict) -> dict[str, list[str]]:
    """Each model's C++ namespaces, one per engine of the export (the manifest's `namespace`,
    `<engine namespace>::<name>`: generated::dense, models::dense, generated_int8::dense...)."""
    return {m["name"]: sorted({e["namespace"] for e in m["engines"].values()}) for m in doc["models"]}


def qualified_name(demangled: str) -> list[str]:
    """The components of a demangled symbol's qualified name, without its return type, template
    arguments, parameters or a prefix such as `guard variable for`.

    >>> qualified_name("void rtmb::dense<16, 8>(float const*, float*)")
    ['rtmb', 'dense']
    >>> qualified_name("models::Processor::gru_forward(float const*, int) [clone .cold]")
    ['models', 'Processor', 'gru_forward']
    >>> qualified_name("guard variable for generated::m::weights::layer0_w")
    ['generated', 'm', 'weights', 'layer0_w']
    """
    text = demangled.replace("(anonymous namespace)", "{anonymous}")
    depth, token, tokens = 0, "", []
    for c in text:
        if depth == 0 and (c == "(" or (token.rsplit("::", 1)[-1] == "operator" and not (c.isalnum() or c == "_"))):
            break  # the parameters, or an operator's name (which may hold '<', '>' or '(')
        if c == "<":
            depth += 1
        elif c == ">":
            depth -= 1
        elif depth == 0 and c == " ":
            tokens.append(token)
            token = ""
        elif depth == 0:
            token += c
    tokens.append(token)
    name = next((t for t in reversed(tokens) if t), "")
    return [part for part in name.split("::") if part]


def attribute(nm_output: str, scopes: dict[str, list[str]]) -> dict:
    """`nm -S -C --defined-only` output summed per model and for the rest of the program. A
    symbol is a model's when its qualified name lies in one of the model's namespaces (scopes) or
    is the Processor's `<name>_forward`, component by component: a model called `dense` does not
    take the kernel rtmb::dense, nor a model called `m` every name holding an m."""
    by_scope = {tuple(ns.split("::")): name for name, nss in scopes.items() for ns in nss}
    forwards = {f"{name}_forward": name for name in scopes}
    models = {n: {"code": 0, "constants": 0} for n in scopes}
    other = {"code": 0, "constants": 0, "zeroed": 0}
    for line in nm_output.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4 or not all(c in "0123456789abcdef" for c in parts[1]):
            continue
        size, kind, symbol = int(parts[1], 16), parts[2], parts[3]
        what = "code" if kind in CODE else "constants" if kind in CONSTANT else "zeroed" if kind in STATE else None
        if what is None:
            continue
        name = qualified_name(symbol)
        inside = (tuple(name[:k]) for k in range(len(name) - 1, 0, -1))  # the scopes it lies in, innermost first
        model = next((by_scope[scope] for scope in inside if scope in by_scope), None)
        if model is None and len(name) == 3 and tuple(name[:2]) == PROCESSOR:
            model = forwards.get(name[2])
        if model is not None and what != "zeroed":
            models[model][what] += size
        else:
            other[what] += size
    return {"models": models, "other": other}


def symbols(target: Target, program: Path, scopes: dict[str, list[str]]) -> dict:
    """The linked image's symbols (nm -S, demangled), summed (attribute()): per model its code (the
    Processor's `<name>_forward`, with the model's forward() inlined, and any function of its own
    namespace) and its constants (its weight arrays, and for int8 their scales); the rest of the
    program's code (the kernels a model calls out of line among it), constants (the test vectors
    among them) and zeroed data.
    What a model's object holds (its state, and with RTNeural a copy of the weights) is in the
    result's model_bytes."""
    out = subprocess.run(
        [f"{target.toolchain}nm", "-S", "-C", "--defined-only", str(program)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return attribute(out, scopes)
