"""`bench report`: reports/README.md, reports/index.html (one self-contained page, plots embedded)
and reports/plots/*.png, rendered from the saved results alone (and, when present, the training
histories under checkpoints/, the validation under build/models/ and the committed baseline).
Nothing is rebuilt or rerun; the same inputs give the same files.

The page is built once, as a list of sections (`Section`: a heading and its blocks: `Text`,
`Table`, `Bullets`, `Image`), and that one model is rendered twice: to markdown (`to_markdown`)
and to HTML (`to_html`). It opens with the answers: the fastest engine of each target that passes
parity, the best engine of each real board, and the regression gate's verdict against the
baseline. A time is judged against the deadline only where it was measured on the CPU that runs
the program, or estimated for a board; emulated and counted figures are shown with what they are."""

from __future__ import annotations

import base64
import html
import io
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import baseline, boards, compare, figures, layer_results, lineup, results, rtneural_bench
from common import atomic, jsonfile, layout, manifest
from common.errors import SuiteError

PAGE_MD, PAGE_HTML, PLOTS = "README.md", "index.html", "plots"  # what render writes into --out
WRITES = (PAGE_MD, PAGE_HTML, PLOTS)
BUDGET_BYTES = 4_000_000  # the design's budget for the five models' weights (~4 MB)
KIND = {
    "measured": "measured on this CPU",
    "emulated": "emulated (QEMU user mode: the emulator's speed, not the board's)",
    "counted": "counted (QEMU -icount: 1 ns per instruction, not a board's time)",
}
KIND_SHORT = {
    "measured": "measured on this CPU",
    "emulated": "emulated (QEMU user mode)",
    "counted": "counted (QEMU -icount)",
}
NO_VERDICT = {  # why an emulated or counted figure is never set against the deadline (the boards' estimates are)
    "emulated": "none: the emulator's time",
    "counted": "none: a count, not a time",
}
TOP_CHANGES = 5  # the largest changes against the baseline shown with the gate's verdict, each way
DEFAULT_OUT = layout.PROJECT / "reports"
DEFAULT_BASELINE = baseline.PATH.parent


# The page model and its two renderings.


@dataclass(frozen=True)
class Text:
    """A paragraph; a note (what a figure is, where it comes from) is set smaller in HTML."""

    text: str
    note: bool = False


@dataclass(frozen=True)
class Table:
    head: tuple
    rows: list[tuple]


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Image:
    """A plot: written to plots/<name>, linked from the markdown, embedded in the HTML."""

    name: str
    title: str
    png: bytes


@dataclass(frozen=True)
class Section:
    heading: str
    blocks: list[Text | Table | Bullets | Image]
    level: int = 2


def _md_table(t: Table) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(t.head), "|" + "---|" * len(t.head), *(line(r) for r in t.rows)])


MARKDOWN = {
    Text: lambda b: b.text,
    Table: _md_table,
    Bullets: lambda b: "\n".join(f"- {item}" for item in b.items),
    Image: lambda b: f"![{b.title}]({PLOTS}/{b.name})",
}


def to_markdown(page: list[Section]) -> str:
    parts = []
    for s in page:
        parts.append(f"{'#' * s.level} {s.heading}")
        parts += [MARKDOWN[type(b)](b) for b in s.blocks]
    return "\n\n".join(parts) + "\n"


NUMBER = re.compile(r"[-+>= ]*[\d.,]+(e[-+]\d+)?%?x?(-[\d.,]+)?")  # 1,234  +3.10%  2.61-5.45  >= 0.19  7.6e-06


def _td(cell) -> str:
    text = str(cell)
    return f"<td{' class=n' if NUMBER.fullmatch(text) else ''}>{html.escape(text)}</td>"


def _html_table(t: Table) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in t.head)
    trs = "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in t.rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


HTML = {
    Text: lambda b: f"<p{' class=note' if b.note else ''}>{html.escape(b.text)}</p>",
    Table: _html_table,
    Bullets: lambda b: "<ul class=note>" + "".join(f"<li>{html.escape(i)}</li>" for i in b.items) + "</ul>",
    Image: lambda b: (
        f"<img alt='{b.name}' title='{html.escape(b.title, quote=True)}' "
        f"src='data:image/png;base64,{base64.b64encode(b.png).decode()}'>"
    ),
}
STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:1em auto;padding:0 1em;color:#222}
h1{margin:0.2em 0}h2{margin:1em 0 0.3em;font-size:1.25em}h3{margin:0.8em 0 0.3em;font-size:1.05em}
p{margin:0.3em 0}table{border-collapse:collapse;font-size:13px;margin:0.4em 0 0.8em}
th,td{border:1px solid #ccc;padding:2px 7px;text-align:right}th{background:#f0f0f0}
td{text-align:left}td.n{text-align:right}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}.note{color:#555;font-size:13px}"""


def to_html(page: list[Section]) -> str:
    body = "".join(
        f"<h{s.level}>{html.escape(s.heading)}</h{s.level}>" + "".join(HTML[type(b)](b) for b in s.blocks) for s in page
    )
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>rt-music-bench report</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>\n"
    )


def images(page: list[Section]) -> list[Image]:
    return [b for s in page for b in s.blocks if isinstance(b, Image)]


# Plots.


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {"figure.dpi": 100, "font.size": 9, "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "rt-music-bench"}
    )
    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


# One colour per engine in every plot, the generated engine first.
ENGINE_ORDER = ("generated", "generated-f16", "generated-int8", "eigen", "xsimd", "stl", "rtneural-json")
ENGINE_COLOURS = {
    "generated": "#2ca02c",
    "generated-f16": "#98df8a",
    "generated-int8": "#17becf",
    "eigen": "#1f77b4",
    "xsimd": "#ff7f0e",
    "stl": "#7f7f7f",
    "rtneural-json": "#8c564b",
}
RTNEURAL_LABELS = {
    "eigen": "RTNeural eigen",
    "xsimd": "RTNeural xsimd",
    "stl": "RTNeural stl",
    "rtneural-json": "RTNeural from JSON",
}
TARGET_LINES = ("-", "--", ":", "-.")  # one line style per target where lines of several targets share a plot


def engine_label(doc: dict) -> str:
    name = results.engine_name(doc)
    return RTNEURAL_LABELS.get(name, name)


def precision_label(doc: dict) -> str:
    """The engine with the precision its weights are stored at, where its name does not say it."""
    name = engine_label(doc)
    return name if doc["dtype"] in results.engine_name(doc) else f"{name} ({doc['dtype']})"


def engine_rank(name: str) -> tuple[int, str]:
    return (ENGINE_ORDER.index(name) if name in ENGINE_ORDER else len(ENGINE_ORDER), name)


def ordered(docs: list[dict]) -> list[dict]:
    return sorted(docs, key=lambda d: (d["target"]["name"], engine_rank(results.engine_name(d))))


def kind(doc: dict) -> str:
    return doc["timing"]["kind"]


def latency_plot(target: str, docs: list[dict]) -> bytes:
    """Per model and for the set, one bar per engine. Measured and emulated: p50 bars, whiskers to
    p99, a dot at the max; the deadline only where measured on the CPU that runs it. Counted:
    instructions per block (QEMU's virtual clock is exact: there is no spread to draw)."""
    plt = _plt()
    counted = kind(docs[0]) == "counted"
    # every model any engine ran (an engine may run only some of them: a bar where it ran)
    models = [*dict.fromkeys(m for doc in docs for m in doc["models"]), layout.SET]
    fig, ax = plt.subplots(figsize=(max(9, 0.55 * len(models)), 4))
    width = 0.8 / len(docs)
    for k, doc in enumerate(docs):
        ran = [i for i, m in enumerate(models) if m == layout.SET or m in doc["models"]]
        xs = [i + (k - (len(docs) - 1) / 2) * width for i in ran]
        colour = ENGINE_COLOURS.get(results.engine_name(doc))
        if counted:
            ax.bar(
                xs, [figures.instructions(doc, models[i]) for i in ran], width, label=engine_label(doc), color=colour
            )
            continue
        lat = [(doc["set"] if models[i] == layout.SET else doc["models"][models[i]])["latency_us"] for i in ran]
        p50 = [v["p50"] for v in lat]
        ax.bar(xs, p50, width, label=engine_label(doc), color=colour)
        up = [v["p99"] - v["p50"] for v in lat]
        ax.errorbar(xs, p50, yerr=[[0] * len(lat), up], fmt="none", ecolor="black", capsize=2, lw=0.8)
        ax.plot(xs, [v["max"] for v in lat], "k.", ms=3)
    if kind(docs[0]) == "measured":
        deadline = docs[0]["config"]["deadline_us"]
        ax.axhline(deadline, color="C3", ls="--", lw=1)
        ax.text(len(models) - 0.5, deadline, f" deadline {deadline / 1000:.2f} ms", va="bottom", ha="right", color="C3")
    ax.set_yscale("log")
    if len(models) > 8:  # many models: slanted names, which do not run into each other
        ax.set_xticks(range(len(models)), models, rotation=40, ha="right", fontsize=7)
    else:
        ax.set_xticks(range(len(models)), [m.replace("_", "\n") for m in models])
    titles = {
        "measured": f"{target}: time per block measured on this CPU ({docs[0]['target']['cpu']}); "
        "p50 bars, p99 whiskers, max dots",
        "emulated": f"{target}: time per block EMULATED (QEMU user mode on this machine: the emulator's "
        "speed, not the board's; no deadline drawn)\np50 bars, p99 whiskers, max dots",
        "counted": f"{target}: instructions per block COUNTED (QEMU -icount), not a board's time; no deadline drawn",
    }
    ax.set_ylabel("instructions per block (log)" if counted else "microseconds per block (log)")
    ax.set_title(titles[kind(docs[0])], fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def stored_weight_bytes(doc: dict, m: dict) -> int | None:
    """A model's weights as its engine stores them; None from a run made before bench stated that
    size, which reported float32's (4 bytes a parameter) for every precision."""
    stale = doc["dtype"] != "float32" and m["weight_bytes"] == 4 * m["parameters"]
    return None if stale else m["weight_bytes"]


def memory_parts(doc: dict) -> dict[str, int | None]:
    """The set's memory by part, each None where the result does not have it: its weights as
    stored, its code, its model objects (state and scratch; RTNeural's hold a copy of the weights)
    and the stack of the deepest model (the models run one after another on one stack)."""
    ms = list(doc["models"].values())

    def total(values):
        return None if any(v is None for v in values) else sum(values)

    stacks = [m.get("stack_bytes") for m in ms]
    return {
        "weights as stored": total([stored_weight_bytes(doc, m) for m in ms]),
        "code": total([m.get("code_bytes") for m in ms]),
        "model objects": total([m.get("model_bytes") for m in ms]),
        "stack (deepest model)": None if any(s is None for s in stacks) else max(stacks),
    }


MEMORY_COLOURS = {"weights as stored": "C0", "code": "C1", "model objects": "C2", "stack (deepest model)": "C4"}


def memory_plot(docs: list[dict]) -> bytes:
    """Per target and engine (at its precision): the set's weights as stored, code, model objects
    and stack, side by side on a log scale, with the weights' budget."""
    plt = _plt()
    parts = [memory_parts(d) for d in docs]
    names = [n for n in MEMORY_COLOURS if any(p[n] is not None for p in parts)]
    fig, ax = plt.subplots(figsize=(11, 0.13 * len(names) * len(docs) + 1.8))
    bar = 0.8 / len(names)
    smallest = min(p[n] for p in parts for n in names if p[n])
    for k, name in enumerate(names):
        ys = [y + (k - (len(names) - 1) / 2) * bar for y in range(len(docs))]
        values = [p[name] or 0 for p in parts]  # absent: no bar, and said so beside it
        ax.barh(ys, [v / 1e6 for v in values], bar, color=MEMORY_COLOURS[name], label=name)
        for y, p in zip(ys, parts, strict=True):
            if p[name] is None:
                ax.text(smallest / 1e6, y, f" {name}: not in this result", va="center", fontsize=6, color="#555")
    ax.axvline(BUDGET_BYTES / 1e6, color="C3", ls="--", lw=1, label="weights budget ~4 MB")
    ax.set_xscale("log")
    ax.set_yticks(range(len(docs)), [f"{d['target']['name']} / {precision_label(d)}" for d in docs], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("MB (log)")
    ax.set_title("Memory of the set per target and engine, at each engine's precision (from the results)")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=len(names) + 1)
    fig.tight_layout()
    return _png(fig)


def baseline_instructions(base: list[figures.Figure]) -> dict[tuple[str, str], float]:
    """The baseline's instructions per block of the set, per target and engine."""
    return {(f.target, f.engine): f.value for f in base if f.model == layout.SET and f.metric == "instructions"}


LINEAR_BAND = 10  # percent: the history plot is linear within this much of the baseline, logarithmic beyond


def history_plot(docs: list[dict], base: dict[tuple[str, str], float], threshold: float) -> bytes | None:
    """Instructions per block of the set over the project's commits, one line per target and engine,
    as a percentage of the baseline's (of the line's first run where the baseline has none). The
    axis is linear within LINEAR_BAND of 100% and logarithmic beyond, so a change of a few percent
    shows beside one of 2x; the gate's threshold is a band around 100%."""
    from matplotlib.ticker import FixedLocator, FuncFormatter

    series: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    commits: dict[str, None] = {}
    tools: dict[str, str] = {}  # per target, what counted its instructions
    for doc in sorted(docs, key=lambda d: d["created"]):
        count = figures.instructions(doc)
        if count:
            commit = doc["project_commit"][:9]
            commits[commit] = None
            series[(doc["target"]["name"], results.engine_name(doc))][commit] = count
            tools[doc["target"]["name"]] = "QEMU -icount" if kind(doc) == "counted" else "callgrind"
    if not series:
        return None
    plt = _plt()
    order = list(commits)
    targets = sorted({t for t, _ in series})
    fig, ax = plt.subplots(figsize=(11, 5))
    ax.axhspan(-threshold, threshold, color="#e6e6e6", zorder=0, label=f"the gate's ±{threshold:g}%")
    ax.axhline(0, color="black", lw=0.8, zorder=1)
    changes = []
    for target, engine in sorted(series, key=lambda k: (k[0], engine_rank(k[1]))):
        points = series[(target, engine)]
        ref = base.get((target, engine)) or next(iter(points.values()))
        ys = [100 * v / ref - 100 for v in points.values()]  # the change from the baseline, in percent
        changes += ys
        label = f"{target} / {RTNEURAL_LABELS.get(engine, engine)}" + ("" if (target, engine) in base else " (1st run)")
        style = TARGET_LINES[targets.index(target) % len(TARGET_LINES)]
        colour = ENGINE_COLOURS.get(engine, "#9467bd")
        ax.plot([order.index(c) for c in points], ys, marker="o", ms=3, ls=style, color=colour, label=label)
    ax.set_yscale("symlog", linthresh=LINEAR_BAND, linscale=2)
    low, high = min(*changes, -2 * threshold), max(*changes, 2 * threshold)
    ticks = [
        t for t in (-90, -50, -20, -10, -5, -3, 0, 3, 5, 10, 20, 50, 100, 200, 500) if low * 1.2 <= t <= high * 1.2
    ]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 + v:g}%"))
    ax.set_ylim(low * 1.2, high * 1.2)
    ax.set_xticks(range(len(order)), order, rotation=30, ha="right", fontsize=7)
    ax.set_xlabel("project commit (oldest first)")
    ax.set_ylabel(f"% of the baseline (linear within ±{LINEAR_BAND}%, log beyond)")
    ax.set_title(
        f"Instructions per block of the set, every target and engine, as % of the committed baseline\n"
        f"counted ({'; '.join(f'{t}: {how}' for t, how in sorted(tools.items()))}); the line style tells the "
        "targets apart",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _png(fig)


def training_plot(checkpoints: Path) -> bytes | None:
    histories = []
    for path in sorted(Path(checkpoints).glob("*/history.json")):
        try:
            doc = jsonfile.read(path, jsonfile.RESULT_BYTES, "training history")
            histories.append((doc["model"], doc["epochs"]))
        except (SuiteError, KeyError, TypeError):
            continue
    histories = [(m, h) for m, h in histories if h]
    if not histories:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(histories), figsize=(3.2 * len(histories), 2.8), squeeze=False)
    for ax, (model, epochs) in zip(axes[0], histories, strict=True):
        xs = [e["epoch"] for e in epochs]
        ax.plot(xs, [e["train_loss"] for e in epochs], "o-", ms=2, label="train")
        ax.plot(xs, [e["val_loss"] for e in epochs], "o-", ms=2, label="validation")
        ax.set_title(model, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("loss")
    fig.tight_layout()
    return _png(fig)


def latest_lineup(peers_dir: Path) -> dict | None:
    """The newest `bench compare-engines` comparison, if any (a damaged file is skipped)."""
    for path in sorted(Path(peers_dir).glob("*.json"), reverse=True):
        try:
            doc = jsonfile.read(path, jsonfile.RESULT_BYTES, "bench compare-engines comparison")
            if doc.get("schema") == "rt-music-bench/peers/1" and doc["engines"]:
                return doc
        except (SuiteError, AttributeError, KeyError, TypeError):
            continue
    return None


def lineup_plot(doc: dict) -> bytes:
    """Set p50 per engine, warm (and cold where measured), with each engine's roofline bound."""
    plt = _plt()
    engines = doc["engines"]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(engines) + 1.5))
    ys = range(len(engines))
    colours = [
        ENGINE_COLOURS.get(e["engine"].split("-")[0] if e["engine"].startswith("generated") else e["engine"], "#9467bd")
        for e in engines
    ]
    ax.barh([y - 0.2 for y in ys], [e["set"]["p50"] for e in engines], 0.4, color=colours, label="warm p50")
    ax.barh(
        [y + 0.2 for y in ys],
        [e["set"].get("cold_p50", 0) for e in engines],
        0.4,
        color=colours,
        alpha=0.45,
        label="cold p50 (caches evicted)",
    )
    ax.plot([e["bound_us"] for e in engines], [y - 0.2 for y in ys], "k|", ms=14, mew=2, label="roofline bound (warm)")

    def label(e):
        return f"{RTNEURAL_LABELS.get(e['engine'], e['engine'])} ({e['kind'].split()[0]}, {e['dtype']})"

    ax.set_yticks(list(ys), [label(e) for e in engines], fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("microseconds per block for the whole set (log)")
    ax.set_title(f"{doc['target']}: every engine on the same models and inputs ({doc['created'][:10]})")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
    fig.tight_layout()
    return _png(fig)


LAYER_KINDS = {"dense": "Dense", "gru": "GRU", "lstm": "LSTM", "conv1d": "Conv1D", "activation": "Activations"}
LAYER_MARKERS = {"generated": "o", "generated-f16": "s", "generated-int8": "D", "eigen": "^", "xsimd": "v", "stl": "P"}


def layers_reference(layer: dict) -> str | None:
    """The engine a layer's figures are set against: RTNeural's best backend on it (by time where
    measured, by instructions where counted), else the generated engine at float32."""
    return layer["rtneural_best"] or ("generated" if "generated" in layer["engines"] else None)


def layers_reference_label(doc: dict) -> str:
    return (
        "RTNeural's best backend" if any(layer["rtneural_best"] for layer in doc["layers"]) else "generated (float32)"
    )


def layers_columns(doc: dict) -> list[tuple[str, str]]:
    """The figures a layers result has, each (key, how it came about): time where measured on this
    CPU, instructions counted by callgrind there, or by QEMU -icount on a counted target."""
    counted = doc.get("timing", "measured") == "counted"
    have = {key for layer in doc["layers"] for f in layer["engines"].values() for key, v in f.items() if v}
    columns = [] if counted or "ns_per_sample" not in have else [("ns_per_sample", KIND["measured"])]
    if "instructions_per_sample" in have:
        columns.append(("instructions_per_sample", "counted (QEMU -icount)" if counted else "counted (callgrind)"))
    return columns


def layers_ratios(layer: dict, key: str) -> dict[str, float]:
    """Each engine's `key` figure on `layer` over its reference engine's (layers_reference)."""
    ref = layers_reference(layer)
    base = layer["engines"][ref][key] if ref else None
    return {e: f[key] / base for e, f in layer["engines"].items() if base and f[key]}


def layers_plot(doc: dict) -> bytes:
    """Per layer, grouped by kind, each engine's time (and instructions) per sample over RTNeural's
    best backend's, on a log scale with the 1.0 line: a dot per engine, a grey bar over their spread."""
    plt = _plt()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def marker(engine):
        style = {"marker": LAYER_MARKERS.get(engine, "o"), "color": ENGINE_COLOURS.get(engine, "#9467bd")}
        return {**style, "ls": "none", "ms": 4.5, "mec": "black", "mew": 0.3}

    columns = layers_columns(doc)
    kinds = [k for k in LAYER_KINDS if any(layer["type"] == k for layer in doc["layers"])]
    groups = {k: [layer for layer in doc["layers"] if layer["type"] == k] for k in kinds}
    names = [e for e in ENGINE_ORDER if e in doc["engines"]]
    offsets = dict(zip(names, np.linspace(-0.3, 0.3, len(names)) if len(names) > 1 else [0.0], strict=True))
    reference = layers_reference_label(doc)
    height = 0.21 * len(doc["layers"]) + 0.45 * len(kinds) + 1.6
    fig = plt.figure(figsize=(5.6 * len(columns) + 0.8, height), layout="constrained")
    subfigs = fig.subfigures(1, len(columns), squeeze=False)[0]
    for sub, (key, how) in zip(subfigs, columns, strict=True):
        what, less = ("time", "faster") if key == "ns_per_sample" else ("instructions", "fewer")
        ratios = {layer["name"]: layers_ratios(layer, key) for layer in doc["layers"]}
        values = [v for r in ratios.values() for v in r.values()] or [1.0]
        low, high = min(min(values), 1.0) / 1.25, max(max(values), 1.0) * 1.25
        axes = sub.subplots(len(kinds), 1, sharex=True, gridspec_kw={"height_ratios": [len(groups[k]) for k in kinds]})
        axes = np.atleast_1d(axes)
        for ax, kind in zip(axes, kinds, strict=True):
            rows = groups[kind]
            for y, layer in enumerate(rows):
                r = ratios[layer["name"]]
                if r:
                    ax.hlines(y, min(r.values()), max(r.values()), color="#d9d9d9", lw=4, zorder=1)
                for e in names:
                    if e in r:
                        ax.plot(r[e], y + offsets[e], zorder=3, **marker(e))
            ax.axvline(1.0, color="black", lw=1, zorder=2)
            ax.set_xscale("log")
            ax.set_xlim(low, high)
            ax.set_yticks(range(len(rows)), [layer["name"] for layer in rows], fontsize=8)
            ax.set_ylim(len(rows) - 0.5, -0.5)
            ax.grid(axis="y", visible=False)
            ax.set_title(LAYER_KINDS[kind], loc="left", fontsize=9, fontweight="bold")
        axes[-1].xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        axes[-1].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        axes[-1].xaxis.set_minor_formatter(NullFormatter())
        # where measured the reference is the best by time: its instructions are the same engine's
        by = " (the fastest)" if key != "ns_per_sample" and "ns_per_sample" in dict(columns) else ""
        axes[-1].set_xlabel(f"{what} per sample / {reference}'s{by} (log): left of 1 is {less}", fontsize=8)
        sub.suptitle(f"{what} per sample: {how}", fontsize=10, fontweight="bold")
    handles = [Line2D([], [], label=RTNEURAL_LABELS.get(e, e), **marker(e)) for e in names]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(names), fontsize=8)
    fig.text(
        0.5,
        1.0 + 0.55 / height,
        f"{doc['target']['name']}: each engine per layer against {reference} ({doc['target']['cpu']}, "
        f"{doc['created'][:10]})",
        ha="center",
        fontsize=11,
    )
    return _png(fig)


LAYERS_SUMMARY_HEAD = ("engine", "time / reference", "faster on", "instructions / reference", "fewer on")


def layers_summary_rows(doc: dict) -> list[tuple]:
    """Per engine, over the layers: the geometric mean of its figure over the reference engine's
    (layers_reference), and on how many layers it is below it, for time and for instructions."""

    def mean(engine, key):
        rs = [layers_ratios(layer, key).get(engine) for layer in doc["layers"]]
        rs = [r for r in rs if r]
        if not rs:
            return "-", "-"
        return f"{math.exp(sum(map(math.log, rs)) / len(rs)):.2f}", f"{sum(r < 1 for r in rs)} of {len(rs)}"

    return [
        (RTNEURAL_LABELS.get(e, e), *mean(e, "ns_per_sample"), *mean(e, "instructions_per_sample"))
        for e in ENGINE_ORDER
        if e in doc["engines"]
    ]


def layers_table(doc: dict) -> tuple[tuple, list[tuple]]:
    """Per layer: the reference engine and its time (or instructions) per sample, and each engine's
    time (or instructions) over it."""
    key = "ns_per_sample" if layers_columns(doc)[0][0] == "ns_per_sample" else "instructions_per_sample"
    names = [e for e in ENGINE_ORDER if e in doc["engines"]]
    unit = "ns/sample" if key == "ns_per_sample" else "instructions/sample"
    rows = []
    for layer in doc["layers"]:
        ref, r = layers_reference(layer), layers_ratios(layer, key)
        rows.append(
            (
                layer["name"],
                ref or "-",
                "-" if ref is None else f"{layer['engines'][ref][key]:,.1f}",
                *("-" if e not in r else f"{r[e]:.2f}" for e in names),
            )
        )
    return ("layer", "reference", f"its {unit}", *(RTNEURAL_LABELS.get(e, e) for e in names)), rows


def layers_intro(doc: dict) -> str:
    c = doc["config"]
    timed = (
        ""
        if doc.get("timing", "measured") == "counted"
        else f"{c['samples_per_engine'] / c['sample_rate']:.2f} s of audio per layer and engine at "
        f"{c['sample_rate']} Hz in blocks of {c['block_size']}, the engines interleaved over {c['rounds']} "
        f"rounds, medians ({KIND['measured']}); "
    )
    counter = f"counted ({doc['counter']})" if doc["counter"] else "not counted"
    return (
        f"`bench layers` {doc['id']}: {len(doc['layers'])} layers x {len(doc['engines'])} engines on "
        f"{doc['target']['cpu']}; {timed}instructions per sample {counter}. Each engine's figure over "
        f"{layers_reference_label(doc)}'s on the same layer (1.00: the same; below 1: faster, fewer)."
    )


ESTIMATE_COLOURS = {"roofline": "#1f77b4", "instructions x clock": "#ff7f0e", "llvm-mca": "#2ca02c"}


def boards_plot(assessed: list[dict]) -> bytes:
    """Per board and engine, each model's estimated range for the set's block (a bar from low to
    high; an open-ended one for a lower bound), the deadline beside, and whether the set fits."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(assessed) + 1.6))
    deadline = assessed[0]["deadline_ms"]
    for y, a in enumerate(assessed):
        for k, e in enumerate(a["estimates"]):
            high = e["high_ms"] if e["high_ms"] is not None else e["low_ms"] * 1.6
            ax.barh(
                y + (k - 1) * 0.25,
                high - e["low_ms"],
                0.22,
                left=e["low_ms"],
                color=ESTIMATE_COLOURS[e["model"]],
                hatch=None if e["high_ms"] is not None else "//",
                label=e["model"]
                if y == 0 or e["model"] not in {x["model"] for x in assessed[0]["estimates"]}
                else None,
            )
    ax.axvline(deadline, color="C3", ls="--", lw=1)
    ax.text(deadline, -0.9, f" deadline {deadline:.2f} ms", color="C3", fontsize=8)
    labels = [
        f"{a['board']}: {a['engine']} (from {a['target']}; {'fits' if a['fit']['fits'] else 'does not fit'})"
        for a in assessed
    ]
    ax.set_yticks(range(len(assessed)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("estimated ms per block for the whole set (log): ranges, not measurements")
    targets = ", ".join(sorted({a["target"] for a in assessed}))
    ax.set_title(f"Real boards: ESTIMATES from the {targets} runs, and memory fit")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=False))
    ax.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


# Tables.


def deadline_cells(doc: dict) -> tuple[str, str]:
    """p99 against the deadline and the misses, only for a time measured on the CPU that runs it."""
    if kind(doc) != "measured":
        return "-", "-"
    return f"{doc['set']['latency_us']['p99'] / doc['config']['deadline_us']:.2%}", str(doc["set"]["deadline_misses"])


def parity_cell(models: list[dict], tolerance: float, passed: bool = True) -> str:
    """`ok` and the largest error only where every error is a finite number within the tolerance
    (and the run passed); else `FAIL` with why: the error above the tolerance, or why there is no
    figure (a NaN or infinite error is recorded as null, with its reason)."""
    worst = results.max_error(models)
    if passed and layout.within(worst, tolerance):
        return f"ok {worst:.1e}"
    why = next((m["parity_problem"] for m in models if m.get("parity_problem")), None)
    if why is None:
        return f"FAIL {worst:.1e} (above {tolerance:g})"
    return f"FAIL: {why}"


def summary_rows(docs: list[dict]) -> list[tuple]:
    rows = []
    for d in docs:
        s = d["set"]
        instr = figures.instructions(d)
        timed = kind(d) != "counted"  # a counted run's figure is its instructions
        rows.append(
            (
                d["target"]["name"],
                engine_label(d),
                kind(d),
                f"{s['latency_us']['p50']:,.1f}" if timed else "-",
                f"{s['latency_us']['p99']:,.1f}" if timed else "-",
                *deadline_cells(d),
                f"{s['latency_cold_us']['p50']:,.1f}" if s.get("latency_cold_us") else "-",
                parity_cell(list(d["models"].values()), d["parity_tolerance"], d["parity_ok"]),
                "-" if instr is None else f"{instr:,}",
                d["project_commit"][:9],
            )
        )
    return rows


SUMMARY_HEAD = (
    "target",
    "engine",
    "timing",
    "set p50 (us)",
    "set p99 (us)",
    "p99 / deadline",
    "misses",
    "cold p50 (us)",
    "parity (max error)",
    "instructions/block",
    "commit",
)
SUMMARY_NOTE = (
    "p99 / deadline and misses only where the time was measured on the CPU that runs the program; "
    "emulated times are QEMU's speed on this machine and counted runs give instructions (QEMU -icount), "
    "neither a board's time: the boards' estimates are above. Timing:"
)


def _bytes(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


MEMORY_HEAD = ("target", "engine", "precision", *MEMORY_COLOURS, "binary text", "binary data+bss")
MEMORY_NOTE = (
    "Bytes, for the set's models (as many as the run had), from each result: weights as the engine stores "
    "them at its precision, its code, its model objects (state and scratch; RTNeural's hold a copy of the "
    "weights) and the stack of the deepest model; and the whole harness binary's sections. '-': not in that "
    "result (code and stack come with newer runs; runs made before weights were stated per precision gave "
    "float32's size, not shown)."
)


def memory_rows(docs: list[dict]) -> list[tuple]:
    rows = []
    for d in docs:
        b = d["build"]["binary"]
        parts = memory_parts(d)
        rows.append(
            (
                d["target"]["name"],
                engine_label(d),
                d["dtype"],
                *(_bytes(parts[n]) for n in MEMORY_COLOURS),
                f"{b['text']:,}",
                f"{b['data'] + b['bss']:,}",
            )
        )
    return rows


def weights_table(docs: list[dict]) -> Table:
    """Per model, its weights as each engine stores them (the engine's newest result on any target:
    the stored weights do not depend on the target)."""
    newest = {}
    for d in sorted(docs, key=lambda d: d["created"]):
        newest[results.engine_name(d)] = d
    engines = [newest[e] for e in sorted(newest, key=engine_rank)]
    models = [*dict.fromkeys(m for d in engines for m in d["models"])]

    def cell(d, model):
        return _bytes(stored_weight_bytes(d, d["models"][model])) if model in d["models"] else "-"

    rows = [(m, *(cell(d, m) for d in engines)) for m in models]
    rows.append(("all models", *(_bytes(memory_parts(d)["weights as stored"]) for d in engines)))
    return Table(("model", *(precision_label(d) for d in engines)), rows)


# The answers.


def block_figure(doc: dict) -> float:
    """What ranks engines on one target: instructions per block where counted, else the set's p50."""
    if kind(doc) == "counted":
        return figures.instructions(doc)
    return doc["set"]["latency_us"]["p50"]


def figure_cell(doc: dict) -> str:
    if kind(doc) == "counted":
        return f"{figures.instructions(doc):,} instructions"
    return f"{doc['set']['latency_us']['p50']:,.1f} us (p50)"


def deadline_verdict(doc: dict) -> str:
    if kind(doc) != "measured":
        return NO_VERDICT[kind(doc)]
    s, deadline = doc["set"], doc["config"]["deadline_us"]
    p99, misses = s["latency_us"]["p99"], s["deadline_misses"]
    verdict = "meets" if misses == 0 and p99 <= deadline else "misses"
    return f"{verdict}: p99 {p99 / deadline:.2%} of it, {misses} misses"


FASTEST_HEAD = ("target", "fastest engine", "set per block", "what the figure is", "deadline", "pass parity")


def fastest_rows(docs: list[dict]) -> list[tuple]:
    """Per target, the engine with the smallest figure (block_figure) among those that pass parity."""
    rows = []
    for target in dict.fromkeys(d["target"]["name"] for d in docs):
        ran = [d for d in docs if d["target"]["name"] == target]
        passing = [d for d in ran if d["parity_ok"]]
        count = f"{len(passing)} of {len(ran)}"
        if not passing:
            rows.append((target, "none passes parity", "-", KIND_SHORT[kind(ran[0])], "-", count))
            continue
        best = min(passing, key=block_figure)
        rows.append(
            (target, engine_label(best), figure_cell(best), KIND_SHORT[kind(best)], deadline_verdict(best), count)
        )
    return rows


def best_table(assessed: list[dict], profiles: list[dict]) -> Table:
    """Per board, boards.best's pick: the best engine that meets the deadline and fits, or why none
    does (with the nearest); the estimate that decides, from which target's run."""

    def row(b):
        engine = b["engine"] or (f"none (nearest: {b['nearest']})" if b["nearest"] else "none")
        estimate = "-" if b["range_ms"] is None else boards.span_ms(*b["range_ms"])
        fits = "-" if b["fits"] is None else "yes" if b["fits"] else "no"
        verdict = b["verdict"] or "-"
        return (
            b["board_name"],
            engine,
            b["target"] or "-",
            estimate,
            b["decided_by"] or "-",
            verdict,
            fits,
            b["why"] or "-",
        )

    deadline = f"deadline {assessed[0]['deadline_ms']:.2f} ms"
    head = ("board", "best engine", "from", "estimated ms per block", "estimated by", deadline, "fits", "why not")
    return Table(head, [row(b) for b in boards.best(assessed, profiles)])


def _shown(path: Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(layout.PROJECT)) if path.is_relative_to(layout.PROJECT) else str(path)


def gate_section(
    docs: list[dict], layer_docs: list[dict], baseline_path: Path, threshold: float
) -> tuple[Section, list[figures.Figure], list[str]]:
    """The regression gate on these results (run and layers documents) against the baseline (bench
    compare's figures and verdict), with the largest changes each way; the baseline's figures; a
    warning where the baseline cannot be read."""
    where = _shown(baseline_path)
    if not baseline.is_baseline(baseline_path):
        text = f"No baseline at {where} (bench baseline update --reason ... makes one): nothing to compare with."
        return Section(f"Regression gate: no baseline at {where}", [Text(text)]), [], []
    try:
        base, _, _ = compare.load_set([baseline_path])
    except SuiteError as exc:
        return Section(f"Regression gate: the baseline {where} cannot be read", [Text(str(exc))]), [], [str(exc)]
    current, _, _ = compare.of_docs(docs, layer_docs)
    rows = compare.compare(base, current, threshold)
    bad = compare.failed(rows)
    counts = defaultdict(int)
    for r in rows:
        counts[r.status] += 1
    tally = ", ".join(f"{n} {status}" for status, n in sorted(counts.items(), key=lambda c: -c[1]))
    verdict = "FAILED" if bad else "passed"
    failing = defaultdict(int)  # figures failing per target and engine
    for r in bad:
        failing[f"{r.target}/{r.engine}"] += 1
    named = ", ".join(f"{k} ({n})" for k, n in sorted(failing.items(), key=lambda f: (-f[1], f[0])))
    text = (
        f"{len(bad)} of {len(rows)} figures worse by more than {threshold:g}% or failing"
        + (f", per target/engine: {named}" if bad else "")
        + f" ({tally}). The largest changes each way (`bench compare` lists every figure):"
    )
    worse = [r for r in rows if r.status == compare.FAIL and r.change is None]
    worse += sorted((r for r in rows if r.change and r.change > 0), key=lambda r: -r.change)
    better = sorted((r for r in rows if r.change and r.change < 0), key=lambda r: r.change)
    top = worse[:TOP_CHANGES] + better[:TOP_CHANGES]
    blocks = [Text(text)] + ([Table(compare.HEAD, compare.cells(top))] if top else [])
    return Section(f"Regression gate against {where}: {verdict} (threshold {threshold:g}%)", blocks), base, []


AUDIO_HEAD = ("model", "target", "engine", "timing", "ns/sample (p50)", "real time", "instructions/sample", "parity")
AUDIO_NOTE = (
    "Models that take one step per audio sample (a block of 512 samples is 512 steps, in one call): "
    "ns per sample at the block's p50, and the field's real-time factor (seconds of audio per second of "
    "compute, from the mean), the latter only where measured on the CPU that runs it. Emulated and counted "
    "runs are labelled in the timing column: no board's time (a counted run's figure is its instructions)."
)


def audio_rows(docs: list[dict]) -> list[tuple]:
    rows = []
    for d in docs:
        for name, m in d["models"].items():
            ps = m.get("per_sample")
            if not ps:
                continue
            rows.append(
                (
                    name,
                    d["target"]["name"],
                    engine_label(d),
                    kind(d),
                    f"{ps['ns_p50']:,.1f}" if kind(d) != "counted" else "-",
                    f"{ps['real_time_factor']:,.0f}x" if kind(d) == "measured" else "-",
                    "-" if ps["instructions"] is None else f"{ps['instructions']:,.0f}",
                    parity_cell([m], d["parity_tolerance"], "parity_problem" not in m),
                )
            )
    return rows


PRECISION_COST_HEAD = ("model", "from", "rate", "layers", "engine", "SNR (dB)", "ESR", "max error", "verdict")


def precision_cost_rows(models_dir: Path) -> list[tuple] | None:
    """What float16 and int8 cost each model of the export, against its reference outputs (the
    manifest's figures), with the verdict against layout.INT8_SNR_BAR_DB."""
    try:
        doc = manifest.load(models_dir)
    except SuiteError:
        return None
    rows = []
    for m in doc["models"]:
        for name, e in m["engines"].items():
            if e["dtype"] == "float32" or "snr_db" not in e:
                continue
            snr = e["snr_db"]
            ok = snr is not None and snr >= layout.INT8_SNR_BAR_DB
            rows.append(
                (
                    m["model"],
                    m["source"]["format"],
                    m["rate"],
                    m["layers"],
                    name,
                    "-" if snr is None else f"{snr:.1f}",
                    "-" if e["error_to_signal"] is None else f"{e['error_to_signal']:.2e}",
                    f"{e['error_vs_float32']:.2e}",
                    "ok" if ok else f"costs more than {layout.INT8_SNR_BAR_DB:g} dB SNR",
                )
            )
    return rows or None


def validation_cell(errors: dict, path: str) -> str:
    """One check's max abs error in the export validation; null (or a NaN, in a file written before
    validate wrote null) is an error that was not a number: FAIL."""
    if path not in errors:
        return "-"
    e = errors[path]
    return f"{e:.2e}" if isinstance(e, (int, float)) and math.isfinite(e) else "FAIL: not a number"


def validation_rows(models_dir: Path) -> tuple[tuple, list[tuple]] | None:
    try:
        doc = jsonfile.read(Path(models_dir) / "validation.json", jsonfile.RESULT_BYTES, "validation")
    except SuiteError:
        return None
    paths = sorted({p for m in doc["models"] for p in m["max_abs_error"]})
    rows = [
        (
            m["model"],
            *(validation_cell(m["max_abs_error"], p) for p in paths),
            "ok" if m["ok"] else "FAIL",
        )
        for m in doc["models"]
    ]
    return ("model", *paths, "result"), rows


def precision_rows(checkpoints: Path) -> tuple[tuple, list[tuple]] | None:
    """What rounding the weights costs on the validation data (`python -m trainer evaluate`)."""
    try:
        doc = jsonfile.read(Path(checkpoints) / "precision.json", jsonfile.RESULT_BYTES, "precision evaluation")
        models = doc["models"]
        order = ("float32", "float16", "int8")
        precisions = sorted(models[0]["values"], key=lambda p: order.index(p) if p in order else len(order))
    except (SuiteError, KeyError, IndexError, TypeError):
        return None

    def cell(m, p):
        value = m["values"][p]
        shown = f"{value:.2%}" if m["higher_is_better"] else f"{value:.3f}"
        return shown if m["acceptable"][p] else f"{shown} (over the bar)"

    return ("model", "metric", *precisions), [
        (m["model"], m["metric"], *(cell(m, p) for p in precisions)) for m in models
    ]


def layers_sections(doc: dict) -> list[Section]:
    """The report's section for one layers result, its plot first, and RTNeural's layer_bench beside."""
    target = doc["target"]["name"]
    out = [
        Section(
            f"Layer by layer on {target} (`bench layers`)",
            [
                Text(layers_intro(doc)),
                Image(
                    f"layers_{target}.png",
                    f"Layer by layer on {target}: each engine against {layers_reference_label(doc)}",
                    layers_plot(doc),
                ),
                Table(LAYERS_SUMMARY_HEAD, layers_summary_rows(doc)),
                Text("Per layer (the plot above draws the same figures):"),
                Table(*layers_table(doc)),
            ],
        )
    ]
    section = doc.get("rtneural_layer_bench")
    if section:
        means = "; ".join(f"{b}: {m:.2f} over {n} layers" for b, (m, n) in rtneural_bench.means(section).items())
        text = (
            f"Median of {section['repeats']} runs of {section['seconds']:g} s each, RTNeural commit "
            f"{section['rtneural_commit'][:12]}, built with {' '.join(section['flags'])}: "
            f"{rtneural_bench.NOTE}. Geometric mean of ours / layer_bench: {means or '-'}."
            + (f" Not in layer_bench: {', '.join(section['not_covered'])}." if section["not_covered"] else "")
        )
        out.append(
            Section(
                f"RTNeural's own {section['source']} beside ours, same backend",
                [Text(text, note=True), Table(rtneural_bench.HEAD, rtneural_bench.rows(section))],
                level=3,
            )
        )
    return out


BOARDS_NOTE = (
    "Estimates, not measurements: for the latest emulated run of each target and engine, each board "
    "that runs it (bench/boards.json, every figure with its source): a roofline (peak multiply-adds "
    "and the bandwidth of the memory the weights fit in), instructions x clock over a range of cycles "
    "per instruction (Cortex-M7, counted by QEMU), and llvm-mca on the hottest inner loop. Fit: the "
    "linked image's code and weights, the model objects, stack and heap placed in the board's memories."
)


def answers(latest: list[dict], assessed: list[dict], profiles: list[dict], gate: Section | None) -> list[Section]:
    """What a reader came for, before any big table."""
    out = [
        Section(
            "Fastest engine per target (among those that pass parity)",
            [Table(FASTEST_HEAD, fastest_rows(latest))],
        )
    ]
    if assessed:
        out.append(
            Section(
                "Per board: the best engine that meets the deadline and fits (estimated from the runs)",
                [best_table(assessed, profiles)],
            )
        )
    return out + ([gate] if gate else [])


def render(
    runs: list[Path],
    out: Path,
    checkpoints: Path | None,
    models_dir: Path | None,
    peers_dir: Path | None = None,
    layers_dir: Path | None = None,
    baseline_path: Path | None = DEFAULT_BASELINE,
) -> tuple[list[Path], list[str]]:
    """Build the page (`page`) from the results and write it as README.md, index.html and the plots."""
    page, warnings = build(runs, checkpoints, models_dir, peers_dir, layers_dir, baseline_path)
    out = Path(out)
    written = []
    for image in images(page):
        atomic.write_bytes(out / PLOTS / image.name, image.png)
        written.append(out / PLOTS / image.name)
    atomic.write_text(out / PAGE_MD, to_markdown(page))
    atomic.write_text(out / PAGE_HTML, to_html(page))
    return [out / PAGE_MD, out / PAGE_HTML, *written], warnings


def build(
    runs: list[Path],
    checkpoints: Path | None,
    models_dir: Path | None,
    peers_dir: Path | None,
    layers_dir: Path | None,
    baseline_path: Path | None,
) -> tuple[list[Section], list[str]]:
    """The page as sections, and warnings naming the files that were skipped."""
    # every file read once, for the tables, the layers sections and the gate alike
    docs, every_layers, warnings = layer_results.load_all(
        [*runs, *([layers_dir] if layers_dir and Path(layers_dir).is_dir() else [])]
    )
    if not docs:
        raise SuiteError("no valid result files to report on", runs[0])
    latest = ordered(figures.latest(docs))
    layer_docs = [d for d in layer_results.latest(every_layers) if layers_columns(d)]  # none drawn without figures
    gate, base = None, []
    if baseline_path is not None:
        gate, base, more = gate_section(docs, every_layers, baseline_path, compare.DEFAULT_THRESHOLD)
        warnings += more
    profiles = boards.load()
    assessed = boards.assess(docs, profiles)

    newest = max(docs, key=lambda d: d["created"])
    c = newest["config"]
    intro = (
        f"From {len(docs)} result files by `bench report` (the newest {newest['created'][:19]} UTC, commit "
        f"{newest['project_commit'][:9]}). Deadline: one block of audio, {c['block_size']} samples at "
        f"{c['sample_rate']} Hz = {c['deadline_us'] / 1000:.2f} ms; a time is judged against it only where "
        "measured on the CPU that runs the program, or estimated for a board."
    )
    page = [Section("Benchmark report", [Text(intro, note=True)], level=1), *answers(latest, assessed, profiles, gate)]
    page.append(
        Section(
            "Every target and engine (the latest run of each)",
            [
                Table(SUMMARY_HEAD, summary_rows(latest)),
                Text(SUMMARY_NOTE, note=True),
                Bullets([f"`{k}`: {v}" for k, v in KIND.items()]),
            ],
        )
    )
    by_target = defaultdict(list)
    for d in latest:
        by_target[d["target"]["name"]].append(d)
    page.append(
        Section(
            "Per target: time per block (instructions where counted)",
            [
                Image(f"latency_{t}.png", f"{t}: {KIND[kind(ds[0])]}", latency_plot(t, ds))
                for t, ds in by_target.items()
            ],
        )
    )
    page.append(
        Section(
            "Memory per target, engine and precision",
            [
                Text(MEMORY_NOTE, note=True),
                Table(MEMORY_HEAD, memory_rows(latest)),
                Text("Weights per model as each engine stores them (bytes):"),
                weights_table(latest),
                Image("memory.png", "Memory per target and engine, at each engine's precision", memory_plot(latest)),
            ],
        )
    )
    history = history_plot(docs, baseline_instructions(base), compare.DEFAULT_THRESHOLD)
    if history:
        note = (
            "Instructions per block of the set at each project commit, as a percentage of the committed "
            "baseline's for the same target and engine (of its first run where the baseline has none); the "
            f"grey band is the gate's ±{compare.DEFAULT_THRESHOLD:g}%."
        )
        title = "Instructions per block over the project's commits, % of the baseline"
        page.append(Section(title, [Text(note, note=True), Image("instructions_history.png", title, history)]))
    training = training_plot(checkpoints) if checkpoints else None
    if training:
        page.append(Section("Training: loss per epoch", [Image("training.png", "Training: loss per epoch", training)]))
    comparison = latest_lineup(peers_dir) if peers_dir else None
    if comparison:
        title = "Every engine side by side (`bench compare-engines`)"
        page.append(
            Section(
                title,
                [
                    Text(lineup.render(comparison).split("\n")[0], note=True),
                    Image("engines.png", "Every engine side by side, with the roofline", lineup_plot(comparison)),
                    Table(lineup.HEAD, lineup.rows(comparison)),
                ],
            )
        )
    for doc in layer_docs:
        page += layers_sections(doc)
    audio = audio_rows(latest)
    if audio:
        page.append(
            Section("Audio models (one step per sample)", [Text(AUDIO_NOTE, note=True), Table(AUDIO_HEAD, audio)])
        )
    costs = precision_cost_rows(models_dir) if models_dir else None
    if costs:
        note = (
            f"Against each model's reference outputs (PyTorch's, or the imported file's), on its test vectors: "
            f"signal-to-noise ratio, error-to-signal ratio (ESR) and the largest error. The bar: "
            f"{layout.INT8_SNR_BAR_DB:g} dB SNR."
        )
        page.append(
            Section("What float16 and int8 cost each model", [Text(note, note=True), Table(PRECISION_COST_HEAD, costs)])
        )
    if assessed:
        page.append(
            Section(
                "Real boards (`bench boards`)",
                [
                    Text(BOARDS_NOTE, note=True),
                    Image("boards.png", "Real boards: estimated time per block and memory fit", boards_plot(assessed)),
                    Table(boards.HEAD, boards.rows(assessed)),
                ],
            )
        )
    validation = validation_rows(models_dir) if models_dir else None
    if validation:
        page.append(Section("Export validation (max abs error against PyTorch)", [Table(*validation)]))
    precision = precision_rows(checkpoints) if checkpoints else None
    if precision:
        page.append(Section("What each weight precision costs (validation metric)", [Table(*precision)]))
    warnings = list(dict.fromkeys(warnings))  # the gate reads the same files again
    if warnings:
        page.append(Section("Skipped files", [Bullets(warnings)]))
    return page, warnings
