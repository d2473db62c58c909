"""C++ source fragments every generated header uses: exact float literals and constant arrays.

A leaf module: the exporter writes model headers with it and nothing else need import the exporter.
"""

from __future__ import annotations

import math
import re

import numpy as np

from common import layout
from common.errors import SuiteError

# The C++ keywords (C++17, and C++20's, so a later standard does not break an export) and the
# alternative tokens: no identifier may be one.
CPP_KEYWORDS = frozenset(
    [
        "alignas",
        "alignof",
        "and",
        "and_eq",
        "asm",
        "auto",
        "bitand",
        "bitor",
        "bool",
        "break",
        "case",
        "catch",
        "char",
        "char8_t",
        "char16_t",
        "char32_t",
        "class",
        "co_await",
        "co_return",
        "co_yield",
        "compl",
        "concept",
        "const",
        "consteval",
        "constexpr",
        "constinit",
        "const_cast",
        "continue",
        "decltype",
        "default",
        "delete",
        "do",
        "double",
        "dynamic_cast",
        "else",
        "enum",
        "explicit",
        "export",
        "extern",
        "false",
        "float",
        "for",
        "friend",
        "goto",
        "if",
        "inline",
        "int",
        "long",
        "mutable",
        "namespace",
        "new",
        "noexcept",
        "not",
        "not_eq",
        "nullptr",
        "operator",
        "or",
        "or_eq",
        "private",
        "protected",
        "public",
        "register",
        "reinterpret_cast",
        "requires",
        "return",
        "short",
        "signed",
        "sizeof",
        "static",
        "static_assert",
        "static_cast",
        "struct",
        "switch",
        "template",
        "this",
        "thread_local",
        "throw",
        "true",
        "try",
        "typedef",
        "typeid",
        "typename",
        "union",
        "unsigned",
        "using",
        "virtual",
        "void",
        "volatile",
        "wchar_t",
        "while",
        "xor",
        "xor_eq",
    ]
)
# Lower-case names the compilers or the C library define as object-like macros (GNU modes define
# `linux` and `unix`; glibc `errno`, `stdin`...): a namespace of that name would not compile.
CPP_MACROS = frozenset(["linux", "unix", "i386", "errno", "stdin", "stdout", "stderr"])
# Namespaces the generated code names: a model's namespace sits beside them (<engine>::<name>) and
# its code names some of them unqualified (rtmb:: in the generated engine, std:: everywhere), so a
# model of that name would hide them (exporter/engine.py, header.py, tables.py; a test checks the
# engines' namespaces are here).
GENERATED_NAMES = frozenset(
    ["std", "detail", "rtmb", "models", "vectors", "generated", "generated_f16", "generated_int8", "rtneural_json"]
)
RESERVED = CPP_KEYWORDS | CPP_MACROS | GENERATED_NAMES | layout.RESERVED_NAMES

SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


class BadName(SuiteError, ValueError):
    """A model name no export can use: one line, naming the name and the way out."""


def identifier(name: str) -> str:
    """`name` if it can name a model: snake_case (lower-case letters and digits in words joined by
    single underscores, so no C++ reserved identifier such as `_x` or `a__b`, and none that the
    generated `<name>_`, `<name>_forward` make one), not a C++ keyword or macro, not a namespace
    the generated code uses, and not one of the suite's own words (layout.RESERVED_NAMES). The one
    check of a model's name, wherever it comes from.

    >>> identifier("dynamics_engine")
    'dynamics_engine'
    >>> identifier("class")  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    common.cgen.BadName: model name 'class': a C++ keyword; ...
    """
    way_out = "give the model another name (--name NAME)"
    if not isinstance(name, str) or not SNAKE_CASE.fullmatch(name):
        why = "not snake_case (a lower-case letter, then lower-case letters and digits, words joined by one _)"
    elif name in CPP_KEYWORDS:
        why = "a C++ keyword"
    elif name in CPP_MACROS:
        why = "a macro the compilers or the C library define"
    elif name in GENERATED_NAMES:
        why = "a namespace the generated C++ uses"
    elif name in layout.RESERVED_NAMES:
        why = f"reserved by the suite ({layout.SET!r}: all the models together; {layout.ALL!r}: every model)"
    else:
        return name
    raise BadName(f"model name {name!r}: {why}; {way_out}")


def hex_float(x: float) -> str:
    """A float32 value as an exact hexadecimal literal; NaN and infinities as GCC's constant builtins
    (a model that overflows has such expected outputs, and parity must see them).

    >>> hex_float(0.5), hex_float(-3.25), hex_float(0.0)
    ('0x1p-1f', '-0x1.ap+1f', '0x0p+0f')
    >>> hex_float(float("nan")), hex_float(float("-inf"))
    ('__builtin_nanf("")', '-__builtin_inff()')
    """
    if math.isnan(x):
        return '__builtin_nanf("")'
    if math.isinf(x):
        return f"{'-' if x < 0 else ''}__builtin_inff()"
    mantissa, exponent = float(x).hex().split("p")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}p{exponent}f"


# The C++ element type and literal of each array dtype the generated code holds: float32 as exact
# hexadecimal floats, int8 weights as decimals, float16 weights as their IEEE bits.
CTYPES = {
    "float32": ("float", hex_float),
    "int8": ("std::int8_t", str),
    "int32": ("std::int32_t", str),
    "float16": ("std::uint16_t", None),
}


def stored_dtype(arr: np.ndarray) -> str:
    """The element type array_code stores an array as: its own where C has it, else float32."""
    return arr.dtype.name if arr.dtype.name in CTYPES else "float32"


def array_bytes(values) -> int:
    """The bytes array_code's array of `values` takes."""
    arr = np.asarray(values)
    return arr.size * np.dtype(stored_dtype(arr)).itemsize


def array_code(name: str, values, attr: str = "MODELS_WEIGHTS_ATTR") -> str:
    """A constant array, 64-byte aligned, placed by `attr`: float32 (the default for lists), int8,
    int32, or float16 (stored as its bits, read by rtmb_kernels.h).

    >>> print(array_code("kBias", [1.0, 0.25], attr=""), end="")
    alignas(64)  inline constexpr float kBias[2] = {
        0x1p+0f, 0x1p-2f};
    >>> print(array_code("kQ", np.array([-127, 3], np.int8), attr=""), end="")
    alignas(64)  inline constexpr std::int8_t kQ[2] = {
        -127, 3};
    >>> print(array_code("kH", np.array([1.0, -2.0], np.float16), attr=""), end="")
    alignas(64)  inline constexpr std::uint16_t kH[2] = {
        0x3c00, 0xc000};
    """
    arr = np.asarray(values)
    dtype = stored_dtype(arr)
    ctype, literal = CTYPES[dtype]
    if dtype == "float16":
        flat, literal = arr.ravel().view(np.uint16), lambda v: f"{v:#06x}"
    else:
        flat = arr.astype(dtype).ravel()
    lines, line = [], ""
    for lit in (literal(v) for v in flat.tolist()):
        if len(line) + len(lit) > 110:
            lines.append(line.rstrip())
            line = ""
        line += lit + ", "
    lines.append(line.rstrip().rstrip(","))
    body = "\n    ".join(lines)
    return f"alignas(64) {attr} inline constexpr {ctype} {name}[{flat.size}] = {{\n    {body}}};\n"
