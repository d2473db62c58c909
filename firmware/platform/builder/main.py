"""SCons builder of the offline platform: the harness in firmware/src, the exported models, and
RTNeural, compiled by the toolchain an environment names (custom_toolchain: a compiler prefix).

It reads the export folder as `make export` left it (the model table and the test vectors are
generated there) and imports nothing of the project but the search for C++ dependencies, so a
build needs neither torch nor the other stages.

The options each environment sets in platformio.ini:
  custom_toolchain   compiler prefix ("" for the host g++, "aarch64-linux-gnu-", ...)
  custom_apt         the Debian package that provides it (named in the error when it is missing)
  custom_os          linux | baremetal
  custom_backend     eigen | xsimd | stl (RTMB_BACKEND in the environment overrides it)
  custom_alignment   RTNEURAL_DEFAULT_ALIGNMENT for the target's SIMD width
  custom_arch        machine flags, given to the compiler and the linker alike
  custom_link        extra link flags (-static for the Linux cross targets run under QEMU)
  custom_ldscript    linker script (baremetal)
  custom_models_dir  the exported models (build/models; RTMB_MODELS_DIR in the environment overrides it)
"""

import os
import shutil
import sys
from pathlib import Path

from SCons.Script import COMMAND_LINE_TARGETS, AlwaysBuild, Default, DefaultEnvironment

env = DefaultEnvironment()
project = Path(env.subst("$PROJECT_DIR"))


def option(name, default=None):
    return env.GetProjectOption(f"custom_{name}", default)


def fail(message):
    sys.stderr.write(f"Error: {message}\n")
    env.Exit(1)


sys.path.insert(0, str(project))  # the project's own packages, also when pio runs outside the venv
from common import rtneural  # noqa: E402
from common.errors import SuiteError  # noqa: E402

prefix = option("toolchain", "")
baremetal = option("os", "linux") == "baremetal"
backend = os.environ.get("RTMB_BACKEND") or option("backend", "eigen")
models_dir = Path(os.environ.get("RTMB_MODELS_DIR") or project / option("models_dir", "build/models"))

cxx = f"{prefix}g++"
if not shutil.which(cxx):
    fail(f"{cxx} not found: install it with `apt-get install {option('apt', cxx)}` (make setup does)")
for name in ("manifest.json", "models.h", "model_table.h", "model_vectors.h"):
    if not (models_dir / name).exists():
        fail(f"{models_dir / name} not found: export the models first (make train export)")
try:
    found = rtneural.require()
    rtneural_flags = found.flags(backend, int(option("alignment", "16")))
except SuiteError as exc:
    fail(str(exc))

env.Replace(
    CC=f"{prefix}gcc",
    CXX=cxx,
    AS=f"{prefix}gcc",
    AR=f"{prefix}gcc-ar",
    RANLIB=f"{prefix}gcc-ranlib",
    LINK=cxx,
    OBJCOPY=f"{prefix}objcopy",
    SIZETOOL=f"{prefix}size",
    PROGSUFFIX=".elf" if baremetal else "",
)
env.Append(
    CXXFLAGS=["-std=c++17"],
    CCFLAGS=["-Wall"],
    CPPPATH=[str(models_dir), str(project / "firmware" / "include")],
    CPPDEFINES=[("BENCH_BACKEND", f'\\"{backend}\\"'), ("BENCH_TARGET", f'\\"{env.subst("$PIOENV")}\\"')],
    LINKFLAGS=["-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free"],  # heap counting
)
env.Append(CCFLAGS=rtneural_flags)  # -I and -D together, as RTNeural's flags come
env.Append(CCFLAGS=option("arch", "").split(), LINKFLAGS=option("arch", "").split() + option("link", "").split())
if baremetal:
    env.Replace(LDSCRIPT_PATH=str(project / option("ldscript")))
    env.Append(LINKFLAGS=["--specs=rdimon.specs", "--specs=nano.specs", "-u", "_printf_float", "-Wl,--gc-sections"])

program = env.BuildProgram()
size = env.Alias("size", program, f"$SIZETOOL {program[0].get_abspath()}")
AlwaysBuild(size)
Default(program if "size" not in COMMAND_LINE_TARGETS else size)
