"""The engines a model runs on: the generated engine (always there: the export carries it) and
RTNeural's backends (where RTNeural is found). One name per engine, used by platformio.ini
(`custom_engine`), `bench run --engine`, the bindings and the results."""

from __future__ import annotations

from common import rtneural
from common.errors import SuiteError

GENERATED = "generated"
# The generated engine at each weight precision (float32 is the plain name).
PRECISIONS = {GENERATED: "float32", "generated-f16": "float16", "generated-int8": "int8"}
# RTNeural's run-time Model<float>, read from the exported JSON when loaded (its fastest backend
# where it is found; it needs a file system, so Linux targets only).
JSON = "rtneural-json"
JSON_BACKEND = "xsimd"
NAMES = (*PRECISIONS, *rtneural.BACKENDS, JSON)
AUTO = "auto"
# Flags the generated engine is built with. Without -fno-trapping-math GCC leaves the clamped
# activation loops scalar (constant clamp bounds become branches); results are identical.
# -ffp-contract=fast fuses multiply-adds where the FPU has them. It is GCC's default for C++ in ISO
# mode too (-std=c++17 fuses a * b + c; only ISO C, -std=c11, turns it off): named so the build does
# not depend on that. The kernels whose bits matter call rtmb::madd (one fused operation) anyway.
GENERATED_FLAGS = ("-fno-trapping-math", "-ffp-contract=fast")


def is_generated(engine: str) -> bool:
    return engine in PRECISIONS


def manifest_key(engine: str) -> str:
    """The engine's key in manifest.json: its own name for the generated engine at each precision
    and for the JSON engine, "rtneural" for every RTNeural backend's ModelT headers."""
    return engine if is_generated(engine) or engine == JSON else "rtneural"


def flags(engine: str, alignment: int = 16) -> list[str]:
    """The compiler flags a program on `engine` needs (RTNeural's -isystem and -D where it is one)."""
    if is_generated(engine):
        return list(GENERATED_FLAGS)
    return rtneural.require().flags(JSON_BACKEND if engine == JSON else engine, alignment)


def dtype(engine: str) -> str:
    return PRECISIONS.get(engine, "float32")


def family(engine: str) -> str:
    """The family a result records: generated, rtneural (ModelT headers) or rtneural-json."""
    return GENERATED if is_generated(engine) else JSON if engine == JSON else "rtneural"


def backend(engine: str) -> str | None:
    """RTNeural's backend an engine is built with (None for the generated engine)."""
    return None if is_generated(engine) else JSON_BACKEND if engine == JSON else engine


def name(family: str, backend: str | None, weights: str) -> str:
    """The engine name of a result: its family and backend ("rtneural", "eigen") or precision."""
    if family == JSON:
        return JSON
    if family != GENERATED:
        return backend or family
    return next(e for e, d in PRECISIONS.items() if d == weights)


def check(engine: str) -> str:
    if engine not in NAMES:
        raise SuiteError(f"unknown engine {engine!r}; choose from {', '.join(NAMES)} (or {AUTO})")
    return engine


def resolve(requested: str, default_backend: str) -> tuple[str, str | None]:
    """The engine to build and, when it was chosen for the user, a note saying why. `auto` is the
    target's RTNeural backend where RTNeural is found, else the generated engine."""
    if requested != AUTO:
        return check(requested), None
    if rtneural.find() is not None:
        return check(default_backend), None
    return GENERATED, f"RTNeural not found: building the generated engine ({rtneural.SETUP_HINT})"


def available(engine: str) -> str | None:
    """Why `engine` cannot be built here, or None."""
    if is_generated(engine):
        return None
    try:
        found = rtneural.find()
        if found is None:
            return "RTNeural not found"
        flags(engine)
    except SuiteError as exc:
        return str(exc)
    return None
