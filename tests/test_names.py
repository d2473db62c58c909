"""Model names: the one check of a name (common/cgen.identifier), the suite's reserved words in one
place (common/layout.py), and the linked image's symbols attributed to models by their C++
namespace, not by a substring of the symbol (bench/build.py)."""

import pytest

from bench import build, callgrind, figures, harness
from common import cgen, layout
from common.errors import SuiteError
from exporter.tables import ENGINES
from models.catalog import MODELS

WAY_OUT = "give the model another name (--name NAME)"


@pytest.mark.parametrize(
    "name",
    [
        "dense",
        "gru",
        "lstm",
        "m",
        "emotion_recognizer",
        "weights",
        "model",
        "set_point",
        "x2",
        "a_1_b",
        *(spec.snake_name for spec in MODELS.values()),
    ],
)
def test_names_a_model_may_take(name):
    assert cgen.identifier(name) == name


@pytest.mark.parametrize(
    "name, why",
    [
        ("set", "reserved by the suite"),
        ("all", "reserved by the suite"),
        ("class", "a C++ keyword"),
        ("namespace", "a C++ keyword"),
        ("and", "a C++ keyword"),
        ("concept", "a C++ keyword"),
        ("linux", "a macro"),
        ("errno", "a macro"),
        ("std", "a namespace the generated C++ uses"),
        ("rtmb", "a namespace the generated C++ uses"),
        ("models", "a namespace the generated C++ uses"),
        ("generated_int8", "a namespace the generated C++ uses"),
        ("x__y", "not snake_case"),  # reserved in C++
        ("_x", "not snake_case"),
        ("x_", "not snake_case"),  # its member x__ would be reserved
        ("Dense", "not snake_case"),
        ("emotionRecognizer", "not snake_case"),
        ("2fast", "not snake_case"),
        ("a-b", "not snake_case"),
        ("", "not snake_case"),
        ("dense layer", "not snake_case"),
        ("naïve", "not snake_case"),
    ],
)
def test_names_no_model_may_take_are_refused_on_one_line(name, why):
    with pytest.raises(cgen.BadName) as err:
        cgen.identifier(name)
    message = str(err.value)
    assert message == f"model name {name!r}: {message.split(': ', 1)[1]}"
    assert why in message and message.endswith(WAY_OUT) and "\n" not in message
    assert isinstance(err.value, SuiteError) and isinstance(err.value, ValueError)  # a tool prints it, exit 2


def test_the_reserved_words_are_in_one_place_and_bench_uses_them():
    assert {layout.SET, layout.ALL} <= layout.RESERVED_NAMES <= cgen.RESERVED
    assert figures.SET is layout.SET
    output = "\n".join(
        [
            '{"type":"meta","models":1}',
            '{"type":"parity","model":"dense","steps":1,"max_abs_error":0}',
            '{"type":"model","model":"dense","parameters":4}',
            '{"type":"latency","model":"dense","p50":1}',
            f'{{"type":"latency","model":"{layout.SET}","p50":2}}',
            '{"type":"done"}',
        ]
    )
    out = harness.parse(output)
    assert list(out["models"]) == ["dense"] and out["set"] == {"p50": 2}
    assert "layout.SET" in callgrind.per_block.__doc__


def test_every_engine_namespace_is_reserved():
    for engine in ENGINES:
        assert engine.namespace in cgen.GENERATED_NAMES, engine.name


# The models of the fake image: names that are kernels' names, a word of the suite, one letter, and
# one of ours, each in the namespaces of three engines.
NAMES = ["dense", "gru", "set", "m", "emotion_recognizer"]
SCOPES = {n: [f"generated::{n}", f"generated_int8::{n}", f"models::{n}"] for n in NAMES}

# (symbol as `nm -C` prints it, nm type, the model it is, or "" for the rest of the program)
SYMBOLS = [
    # the Processor's noinline forward of each model, the model's forward() inlined into it
    ("models::Processor::dense_forward(float const*, int)", "T", "dense"),
    ("models::Processor::gru_forward(float const*, int)", "T", "gru"),
    ("models::Processor::set_forward(float const*, int)", "T", "set"),
    ("models::Processor::m_forward(float const*, int)", "T", "m"),
    ("models::Processor::emotion_recognizer_forward(float const*, int) [clone .cold]", "t", "emotion_recognizer"),
    # the rest of the Processor is the program's
    ("models::Processor::process(float const* const*, float const**, int)", "T", ""),
    ("models::Processor::forward(int, float const*, int)", "W", ""),
    ("models::Processor::load()", "W", ""),
    ("models::kInfo", "R", ""),
    # weights of the generated engines (inline variables: u), int8 scales, the RTNeural header's
    ("generated::dense::weights::layer0_w", "u", "dense"),
    ("generated::gru::weights::layer1_u", "u", "gru"),
    ("generated_int8::set::weights::layer0_scale", "R", "set"),
    ("generated::m::weights::layer0_b", "u", "m"),
    ("models::m::detail::layer0_w", "r", "m"),
    ("generated::emotion_recognizer::weights::layer2_w", "V", "emotion_recognizer"),
    # a model's own functions, out of line
    ("generated::gru::Model::forward(float const*)", "W", "gru"),
    ("models::dense::loadWeights(RTNeural::ModelT<float, 8, 2, RTNeural::DenseT<float, 8, 2> >&)", "W", "dense"),
    ("generated::m::Model::forward(float const*)::{lambda(int)#1}::operator()(int) const", "t", "m"),
    # the kernels, named like the models: the program's
    ("void rtmb::dense<16, 8>(float const*, float*, float const*, float const*)", "W", ""),
    ("rtmb::gru(float const*, float*, float const*, int)", "T", ""),
    ("rtmb::lstm_gates(float*, int)", "T", ""),
    ("rtmb::set_zero(float*, int)", "T", ""),
    ("void rtmb::gemv<&generated::dense::weights::layer0_w>(float*)", "W", ""),
    ("RTNeural::DenseT<float, 8, 16>::forward(float const*)", "W", ""),
    ("RTNeural::GRULayerT<float, 16, 8>::reset()", "W", ""),
    ("std::vector<float, std::allocator<float> >::operator[](unsigned long)", "W", ""),
    # the test vectors are not a model's
    ("vectors::dense::kInputs", "R", ""),
    ("vectors::kTable", "R", ""),
    # names that merely hold a model's, or hold an m
    ("main", "T", ""),
    ("memset", "T", ""),
    ("dense", "T", ""),
    ("mdense::weights::x", "R", ""),
    ("generated::dense_x::weights::w", "R", ""),
    ("models::Processor::dense_forward_helper(float const*)", "T", ""),
    ("typeinfo for models::Processor", "V", ""),
    ("guard variable for generated::m::weights::layer0_b", "u", "m"),
]


def nm_line(k: int, symbol: str, kind: str) -> str:
    return f"{0x401000 + 64 * k:016x} {1 << (k % 20):016x} {kind} {symbol}"


@pytest.mark.parametrize(
    "k, symbol, kind, owner", [(k, *row) for k, row in enumerate(SYMBOLS)], ids=[s for s, *_ in SYMBOLS]
)
def test_each_symbol_goes_to_its_model_by_namespace(k, symbol, kind, owner):
    size, what = 1 << (k % 20), "code" if kind in build.CODE else "constants"
    got = build.attribute(nm_line(k, symbol, kind), SCOPES)
    expected = {n: {"code": 0, "constants": 0} for n in NAMES}
    other = {"code": 0, "constants": 0, "zeroed": 0}
    if owner:
        expected[owner][what] = size
    else:
        other[what] = size
    assert got == {"models": expected, "other": other}


def test_a_whole_image_sums_per_model_and_skips_what_is_not_a_sized_symbol():
    lines = [nm_line(k, symbol, kind) for k, (symbol, kind, _) in enumerate(SYMBOLS)]
    lines += [
        "0000000000405000 0000000000001000 B (anonymous namespace)::processor",  # zeroed: the program's
        "0000000000406000 0000000000000010 b generated::gru::weights::scratch",  # zeroed: never a model's
        "0000000000401000 T _start",  # no size
        "0000000000407000 0000000000000008 N generated::dense::debug",  # not a type counted
        "",
    ]
    got = build.attribute("\n".join(lines), SCOPES)
    for name in NAMES:
        for what in ("code", "constants"):
            assert got["models"][name][what] == sum(
                1 << (k % 20)
                for k, (_, kind, owner) in enumerate(SYMBOLS)
                if owner == name and ("code" if kind in build.CODE else "constants") == what
            ), (name, what)
    assert got["other"]["zeroed"] == 0x1000 + 0x10
    everything = sum(1 << (k % 20) for k in range(len(SYMBOLS))) + 0x1010
    assert sum(v for m in got["models"].values() for v in m.values()) + sum(got["other"].values()) == everything


def test_the_scopes_come_from_the_manifest():
    doc = {
        "models": [
            {
                "name": "dense",
                "engines": {"generated": {"namespace": "generated::dense"}, "rtneural": {"namespace": "models::dense"}},
            },
            {"name": "m", "engines": {"generated-int8": {"namespace": "generated_int8::m"}}},
        ]
    }
    assert build.model_scopes(doc) == {"dense": ["generated::dense", "models::dense"], "m": ["generated_int8::m"]}


@pytest.mark.parametrize(
    "demangled, name",
    [
        ("generated::dense::weights::layer0_w", ["generated", "dense", "weights", "layer0_w"]),
        ("void rtmb::dense<16, 8>(float const*, float*)", ["rtmb", "dense"]),
        ("float const* rtmb::out<1>(int)", ["rtmb", "out"]),
        (
            "models::Processor::gru_forward(float const*, int) [clone .constprop.0]",
            ["models", "Processor", "gru_forward"],
        ),
        ("guard variable for generated::m::weights::w", ["generated", "m", "weights", "w"]),
        ("non-virtual thunk to a::b::c()", ["a", "b", "c"]),
        ("(anonymous namespace)::f(int)", ["{anonymous}", "f"]),
        ("generated::m::Model::operator<(generated::m::Model const&)", ["generated", "m", "Model", "operator"]),
        ("std::vector<int, std::allocator<int> >::operator[](unsigned long)", ["std", "vector", "operator"]),
        ("main", ["main"]),
    ],
)
def test_qualified_names_of_demangled_symbols(demangled, name):
    assert build.qualified_name(demangled) == name
