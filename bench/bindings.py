"""The exported models compiled into a host shared library (bench/cabi.cpp) and called from Python
with cffi, so tests check the real compiled models against torch and pytest-benchmark times them.

Reads only the export folder (its manifest.json and headers); importing this loads no torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cffi import FFI

from common import cxx, engines, layout, manifest, rtneural
from common.errors import SuiteError

SOURCE = Path(__file__).with_name("cabi.cpp")
BUILD_DIR = layout.PROJECT / "build" / "bindings"
CDEF = """
int rtmb_count(void);
const char* rtmb_name(int index);
int rtmb_input_size(int index);
int rtmb_output_size(int index);
long long rtmb_parameter_count(int index);
int rtmb_per_sample(int index);
int rtmb_reset(int index);
int rtmb_forward(int index, const float* in, float* out);
int rtmb_run(int index, const float* inputs, int steps, float* outputs);
"""
ffi = FFI()
ffi.cdef(CDEF)


def build(models_dir: Path, engine: str = engines.GENERATED, build_dir: Path = BUILD_DIR) -> Path:
    """Compile (or reuse) the library for the models exported into `models_dir`, on `engine` (the
    generated engine, which needs nothing, or an RTNeural backend)."""
    models_dir = Path(models_dir).resolve()
    doc = manifest.load(models_dir)
    key = engines.manifest_key(engines.check(engine))
    names = manifest.engine_files(doc, key)
    manifest.verify(models_dir, doc, names)
    table = doc["engines"][key]["table"]
    salt = "" if engines.is_generated(engine) else rtneural.require().commit
    flags = [
        "-std=c++17",
        "-O2",
        "-shared",
        "-fPIC",
        "-fvisibility=hidden",  # each library keeps its own models (cabi.cpp)
        *engines.flags(engine),
        f"-I{models_dir}",
        f'-DRTMB_MODEL_TABLE="{table}"',
        f'-DRTMB_MODELS_DIR="{models_dir}"',
    ]
    return cxx.cached(
        f"librtmb-{engine}",
        SOURCE,
        flags,
        [models_dir / n for n in names],
        Path(build_dir),
        salt,
        what="the cffi library",
        suffix=".so",
    )


class Models:
    """The compiled models of one library, by snake-case name: reset, forward one block, or run many."""

    def __init__(self, library: Path):
        self.library = Path(library)
        self.lib = ffi.dlopen(str(self.library))
        if self.lib.rtmb_count() and self.lib.rtmb_name(0) == ffi.NULL:
            raise SuiteError("could not load the models (a model file is missing or unreadable)", self.library)
        self.index = {ffi.string(self.lib.rtmb_name(i)).decode(): i for i in range(self.lib.rtmb_count())}
        # read once: forward() is timed, and each cffi call costs about as much as a small model
        self.sizes = {n: (self.lib.rtmb_input_size(i), self.lib.rtmb_output_size(i)) for n, i in self.index.items()}

    @classmethod
    def build(cls, models_dir: Path, engine: str = engines.GENERATED, build_dir: Path = BUILD_DIR) -> Models:
        return cls(build(models_dir, engine, build_dir))

    @property
    def names(self) -> list[str]:
        return list(self.index)

    def _index(self, name: str) -> int:
        if name not in self.index:
            raise SuiteError(f"no model {name!r} in it; it has {', '.join(self.index)}", self.library)
        return self.index[name]

    def input_size(self, name: str) -> int:
        self._index(name)
        return self.sizes[name][0]

    def output_size(self, name: str) -> int:
        self._index(name)
        return self.sizes[name][1]

    def per_sample(self, name: str) -> bool:
        """Whether the model takes one step per audio sample (else one per block)."""
        return self.lib.rtmb_per_sample(self._index(name)) == 1

    def parameter_count(self, name: str) -> int:
        return self.lib.rtmb_parameter_count(self._index(name))

    def reset(self, name: str) -> None:
        self.lib.rtmb_reset(self._index(name))

    def forward(self, name: str, x: np.ndarray) -> np.ndarray:
        """One block: the model's output for input `x`, state carried from the previous call."""
        return self.run(name, np.asarray(x, dtype=np.float32).reshape(1, -1))[0]

    def run(self, name: str, inputs: np.ndarray) -> np.ndarray:
        """Consecutive steps (a [steps, input_size] array) in one call, state carried throughout: a
        block-rate model's blocks, or a sample-rate model's samples (run in audio blocks)."""
        i = self._index(name)
        n_in, n_out = self.sizes[name]
        inputs = np.ascontiguousarray(inputs, dtype=np.float32)
        if inputs.ndim != 2 or inputs.shape[1] != n_in:
            raise ValueError(f"{name} takes [steps, {n_in}] inputs, not {list(inputs.shape)}")
        outputs = np.empty((inputs.shape[0], n_out), dtype=np.float32)
        self.lib.rtmb_run(i, ffi.from_buffer("float[]", inputs), inputs.shape[0], ffi.from_buffer("float[]", outputs))
        return outputs
