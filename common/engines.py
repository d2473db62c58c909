"""The engines a model runs on: the generated engine (always there: the export carries it) and
RTNeural's backends (where RTNeural is found). One name per engine, used by platformio.ini
(`custom_engine`), `bench run --engine`, the bindings and the results."""

from __future__ import annotations

from common import rtneural
from common.errors import SuiteError

GENERATED = "generated"
# The generated engine at each weight precision (float32 is the plain name).
PRECISIONS = {GENERATED: "float32", "generated-f16": "float16", "generated-int8": "int8"}
NAMES = (*PRECISIONS, *rtneural.BACKENDS)
AUTO = "auto"
# Flags the generated engine is built with. Without -fno-trapping-math GCC leaves the clamped
# activation loops scalar (constant clamp bounds become branches); results are identical.
# -ffp-contract=fast fuses multiply-adds where the FPU has them (ISO C++ mode turns that off).
GENERATED_FLAGS = ("-fno-trapping-math", "-ffp-contract=fast")


def is_generated(engine: str) -> bool:
    return engine in PRECISIONS


def manifest_key(engine: str) -> str:
    """The engine's key in manifest.json: its own name for the generated engine at each precision,
    "rtneural" for every RTNeural backend."""
    return engine if is_generated(engine) else "rtneural"


def dtype(engine: str) -> str:
    return PRECISIONS.get(engine, "float32")


def name(family: str, backend: str | None, weights: str) -> str:
    """The engine name of a result: its family and backend ("rtneural", "eigen") or precision."""
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
        found.flags(engine)
    except SuiteError as exc:
        return str(exc)
    return None
