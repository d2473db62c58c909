"""A build that does not fit its memory says so in one line: which region overflowed by how much, for
which target and engine, and what to do; not only `collect2: error: ld returned 1 exit status`."""

import pytest

from bench import build as bench_build
from bench import targets
from common.errors import SuiteError

LD = "/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld"
ELF = ".pio/build-generated/cortex_m7_2mb/program.elf"
# The end of `pio run -e cortex_m7_2mb`'s output, captured: the float32 set in 2 MB of flash; the
# same with -DBENCH_MAX_BLOCKS=200000 (its timings outgrow 1 MB of RAM too); a missing header.
ONE_REGION = f"""\
Linking {ELF}
{LD}: {ELF} section `.text' will not fit in region `FLASH'
{LD}: region `FLASH' overflowed by 2374976 bytes
collect2: error: ld returned 1 exit status
*** [{ELF}] Error 1
"""
TWO_REGIONS = f"""\
Linking {ELF}

<command-line>: warning: "BENCH_MAX_BLOCKS" redefined
<command-line>: note: this is the location of the previous definition
{LD}: {ELF} section `.text' will not fit in region `FLASH'
{LD}: {ELF} section `.bss' will not fit in region `RAM'
{LD}: region `FLASH' overflowed by 2376192 bytes
{LD}: region `RAM' overflowed by 3775616 bytes
collect2: error: ld returned 1 exit status
*** [{ELF}] Error 1
"""
NO_OVERFLOW = """\
Compiling .pio/build-generated/cortex_m7_2mb/src/cortex_m/platform.o

<command-line>: fatal error: no_such_header.h: No such file or directory
compilation terminated.
*** [.pio/build-generated/cortex_m7_2mb/src/cortex_m/platform.o] Error 1
"""


@pytest.mark.parametrize(
    "output, regions, says",
    [
        (
            ONE_REGION,
            {"FLASH": (2374976, [".text"])},
            "cortex-m7-2mb (env:cortex_m7_2mb) with engine generated does not fit its memory: region FLASH "
            "overflowed by 2,374,976 bytes (.text); try a smaller precision (--engine generated-int8), fewer "
            "models (--models) or a target with more memory (bench targets)",
        ),
        (
            TWO_REGIONS,
            {"FLASH": (2376192, [".text"]), "RAM": (3775616, [".bss"])},
            "does not fit its memory: region FLASH overflowed by 2,376,192 bytes (.text); region RAM "
            "overflowed by 3,775,616 bytes (.bss); try",
        ),
        (NO_OVERFLOW, {}, "failed:\n<command-line>: fatal error: no_such_header.h: No such file or directory"),
    ],
)
def test_a_failed_build_says_what_did_not_fit(output, regions, says):
    assert bench_build.overflows(output) == regions
    error = bench_build.failure(targets.get("cortex-m7-2mb"), "generated", output)
    assert says in error.problem
    if regions:
        assert "\n" not in error.problem and "collect2" not in error.problem


@pytest.mark.parametrize(
    "engine, instead",
    [
        ("generated", "try a smaller precision (--engine generated-f16 or generated-int8), fewer models"),
        ("generated-f16", "try a smaller precision (--engine generated-int8), fewer models"),
        ("generated-int8", "try fewer models"),
    ],
)
def test_the_smaller_precisions_offered_are_the_targets_own(engine, instead):
    error = bench_build.failure(targets.get("cortex-m7"), engine, ONE_REGION)
    assert f"with engine {engine} does not fit its memory" in error.problem and instead in error.problem


def test_a_real_link_that_overflows_is_one_line(exported, tmp_path, pio_ready):
    """The timings of 200,000 blocks (2.4 MB) outgrow the 2 MB target's 1 MB of RAM."""
    target = targets.get("cortex-m7-2mb")
    with pytest.raises(SuiteError) as err:
        bench_build.build(target, "generated-int8", exported, tmp_path, ("-DBENCH_MAX_BLOCKS=200000",))
    problem = err.value.problem
    assert problem.startswith("cortex-m7-2mb (env:cortex_m7_2mb) with engine generated-int8 does not fit its memory")
    assert "region RAM overflowed by " in problem and "(.bss)" in problem and "\n" not in problem
