"""SCons builder of the offline platform: the harness in firmware/src, the exported models, and
the engine it runs them on (the generated engine, or RTNeural with a backend), compiled by the
toolchain an environment names (custom_toolchain: a compiler prefix).

It reads the export folder as `make export` left it (the model table and the test vectors are
generated there) and imports nothing of the project but the search for C++ dependencies (and,
to upload, common/remote.py), so a build needs neither torch nor the other stages.

The options each environment sets in platformio.ini:
  custom_toolchain   compiler prefix ("" for the host g++, "aarch64-linux-gnu-", ...)
  custom_apt         the Debian package that provides it (named in the error when it is missing)
  custom_os          linux | baremetal
  custom_engine      auto | generated[-f16|-int8] | eigen | xsimd | stl | rtneural-json
                     (RTMB_ENGINE in the environment overrides it);
                     auto: the environment's RTNeural backend where RTNeural is found, else generated
  custom_backend     the RTNeural backend auto picks (eigen | xsimd | stl)
  custom_alignment   RTNEURAL_DEFAULT_ALIGNMENT for the target's SIMD width
  custom_arch        machine flags, given to the compiler and the linker alike
  custom_link        extra link flags (-static for the Linux cross targets run under QEMU)
  custom_ldscript    linker script (baremetal)
  custom_models_dir  the exported models (build/models; RTMB_MODELS_DIR in the environment overrides it)

`pio run -e <linux env> -t upload` deploys the program to a board over SSH, through labgrid
(common/remote.py): upload_port = user@host[:port] (or --upload-port), and in upload_flags
`--key FILE`, `--remote-dir DIR` (default ~/rt-music-bench) and, for a board that emulates the
target, `--run-prefix "qemu-aarch64 -cpu cortex-a72"`.
"""

import argparse
import json
import os
import shlex
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
from common import engines, remote  # noqa: E402  (remote: labgrid, imported only when uploading)
from common.errors import SuiteError  # noqa: E402

prefix = option("toolchain", "")
baremetal = option("os", "linux") == "baremetal"
models_dir = Path(os.environ.get("RTMB_MODELS_DIR") or project / option("models_dir", "build/models"))

cxx = f"{prefix}g++"
if not shutil.which(cxx):
    fail(f"{cxx} not found: install it with `apt-get install {option('apt', cxx)}` (make setup does)")
manifest_path = models_dir / "manifest.json"
try:
    manifest = json.loads(manifest_path.read_text())
    engine, note = engines.resolve(os.environ.get("RTMB_ENGINE") or option("engine", "auto"), option("backend"))
    key = engines.manifest_key(engine)
    if key not in manifest["engines"]:
        why = "; ".join(f"{m['name']}: {m.get('unavailable', {}).get(key, '?')}" for m in manifest["models"])
        fail(f"{manifest_path}: no model of this export runs on {engine} ({why}); choose another engine")
    shared = manifest["engines"][engines.manifest_key(engine)]
    engine_flags = engines.flags(engine, int(option("alignment", "16")))
except FileNotFoundError:
    fail(f"{manifest_path} not found: export the models first (make train export)")
except (OSError, ValueError, KeyError, TypeError) as exc:
    fail(f"{manifest_path}: not an export this version builds ({exc!r}); export again (make export)")
except SuiteError as exc:
    fail(str(exc))
# The harness includes rtmb_engine.h; this one names the engine's table and test vectors with plain
# #includes, which SCons scans, so a changed export rebuilds (a macro in #include would hide them).
selected = Path(env.subst("$BUILD_DIR")) / "engine" / "rtmb_engine.h"
text = (
    f"// The engine this build runs ({engine}) and the outputs it must reproduce; written by the builder.\n"
    f'#pragma once\n#include "{shared["table"]}"\n#include "{shared["vectors"]}"\n'
)
if not selected.exists() or selected.read_text() != text:
    selected.parent.mkdir(parents=True, exist_ok=True)
    selected.write_text(text)
if note:
    print(note)
print(f"engine: {engine}; models from {models_dir}")
for name in (shared["umbrella"], shared["table"], shared["vectors"]):
    if not (models_dir / name).exists():
        fail(f"{models_dir / name} not found: export the models first (make train export)")

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
    CCFLAGS=["-Wall", "-Wextra"],
    CPPPATH=[str(selected.parent), str(models_dir), str(project / "firmware" / "include")],
    CPPDEFINES=[
        ("BENCH_ENGINE", f'\\"{engine}\\"'),
        ("BENCH_TARGET", f'\\"{env.subst("$PIOENV")}\\"'),
        ("RTMB_MODELS_DIR", f'\\"{models_dir.resolve()}\\"'),  # where the JSON engine reads its models
    ],
    LINKFLAGS=[
        "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free",  # heap counting
        "-Wl,-Map=" + str(Path(env.subst("$BUILD_DIR")) / "program.map"),  # where each section went, for people
    ],
)
env.Append(CCFLAGS=engine_flags)  # RTNeural's -I and -D together, as its flags come
env.Append(CCFLAGS=option("arch", "").split(), LINKFLAGS=option("arch", "").split() + option("link", "").split())
if baremetal:
    env.Replace(LDSCRIPT_PATH=str(project / option("ldscript")))
    env.Append(LINKFLAGS=["--specs=rdimon.specs", "--specs=nano.specs", "-u", "_printf_float", "-Wl,--gc-sections"])


def upload(target, source, env):
    """Put the program on the board of upload_port, in <remote dir>/<env>, after checking that the
    board's machine runs it."""
    port = env.subst("$UPLOAD_PORT") or env.GetProjectOption("upload_port", "")
    if not port:
        fail("no board to upload to: set upload_port = user@host[:port] in platformio.ini, or give --upload-port")
    parser = argparse.ArgumentParser(prog="upload_flags", add_help=False)
    parser.add_argument("--key")
    parser.add_argument("--remote-dir", default=remote.REMOTE_ROOT)
    parser.add_argument("--run-prefix", default="")
    flags = env.get("UPLOAD_FLAGS") or []
    known, unknown = parser.parse_known_args([a for f in flags for a in shlex.split(env.subst(f))])
    if unknown:
        fail(f"upload_flags: {' '.join(unknown)} not understood (known: --key, --remote-dir, --run-prefix)")
    name = option("target", env.subst("$PIOENV"))
    try:
        board = remote.connect(port, known.key, known.run_prefix)
        try:
            board.root = known.remote_dir
            machine = board.machine()
            if machine not in remote.MACHINES.get(name, ()):
                fail(f"board {board.name} is {machine} (uname -m); this {name} program does not run there")
            folder = board.put([Path(source[0].get_abspath())], env.subst("$PIOENV"))
        finally:
            board.close()
    except SuiteError as exc:
        fail(str(exc))
    print(f"uploaded {source[0].name} to {board.name}: {folder}/{source[0].name}")


program = env.BuildProgram()
size = env.Alias("size", program, f"$SIZETOOL {program[0].get_abspath()}")
AlwaysBuild(size)
if baremetal:
    uploaded = env.Alias(
        "upload",
        program,
        lambda *a, **k: fail(
            "upload deploys to Linux boards over SSH; flash a baremetal image with the board's own tool"
        ),
    )
else:
    uploaded = env.Alias("upload", program, env.VerboseAction(upload, "Uploading $SOURCE over SSH (labgrid)"))
AlwaysBuild(uploaded)
Default(program if "size" not in COMMAND_LINE_TARGETS else size)
