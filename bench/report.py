"""`bench report`: reports/README.md, reports/index.html (one self-contained page, plots embedded)
and reports/plots/*.png, rendered from the saved results alone (and, when present, the training
histories under checkpoints/ and the validation under build/models/). Nothing is rebuilt or rerun;
the same inputs give the same files."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench import boards, figures, layer_results, lineup, results, rtneural_bench
from common import atomic, layout, manifest
from common.errors import SuiteError

BUDGET_BYTES = 4_000_000  # the design's budget for the five models' weights (~4 MB)
KIND = {
    "measured": "measured on this CPU",
    "emulated": "emulated (QEMU user mode: the emulator's speed, not the board's)",
    "counted": "counted (QEMU -icount: 1 ns per instruction, not a board's time)",
}


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


def engine_label(doc: dict) -> str:
    name = results.engine_name(doc)
    return RTNEURAL_LABELS.get(name, name)


def ordered(docs: list[dict]) -> list[dict]:
    def key(d):
        name = results.engine_name(d)
        return (d["target"]["name"], ENGINE_ORDER.index(name) if name in ENGINE_ORDER else 99, name)

    return sorted(docs, key=key)


def latency_plot(target: str, docs: list[dict]) -> bytes:
    """p50 bars per model and for the set, one bar per engine; whiskers to p99, a dot at the max."""
    plt = _plt()
    # every model any engine ran (an engine may run only some of them: a bar where it ran)
    models = [*dict.fromkeys(m for doc in docs for m in doc["models"]), layout.SET]
    fig, ax = plt.subplots(figsize=(max(9, 0.55 * len(models)), 4))
    width = 0.8 / len(docs)
    for k, doc in enumerate(docs):
        ran = [i for i, m in enumerate(models) if m == layout.SET or m in doc["models"]]
        lat = [
            doc["set"]["latency_us"] if models[i] == layout.SET else doc["models"][models[i]]["latency_us"] for i in ran
        ]
        xs = [i + (k - (len(docs) - 1) / 2) * width for i in ran]
        p50 = [v["p50"] for v in lat]
        ax.bar(xs, p50, width, label=engine_label(doc), color=ENGINE_COLOURS.get(results.engine_name(doc)))
        ax.errorbar(
            xs,
            p50,
            yerr=[[0] * len(lat), [v["p99"] - v["p50"] for v in lat]],
            fmt="none",
            ecolor="black",
            capsize=2,
            lw=0.8,
        )
        ax.plot(xs, [v["max"] for v in lat], "k.", ms=3)
    deadline = docs[0]["config"]["deadline_us"]
    ax.axhline(deadline, color="C3", ls="--", lw=1)
    ax.text(len(models) - 0.5, deadline, f" deadline {deadline / 1000:.2f} ms", va="bottom", ha="right", color="C3")
    ax.set_yscale("log")
    if len(models) > 8:  # many models: slanted names, which do not run into each other
        ax.set_xticks(range(len(models)), models, rotation=40, ha="right", fontsize=7)
    else:
        ax.set_xticks(range(len(models)), [m.replace("_", "\n") for m in models])
    ax.set_ylabel("microseconds per block (log)")
    ax.set_title(f"{target}: latency per block, p50 bars, p99 whiskers, max dots ({docs[0]['timing']['kind']})")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _png(fig)


def memory_plot(docs: list[dict]) -> bytes:
    plt = _plt()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 0.32 * len(docs) + 2.5), gridspec_kw={"width_ratios": [1, 1.4]})
    first = docs[0]["models"]
    names = list(first)
    weights = [first[n]["weight_bytes"] / 1e6 for n in names]
    ax1.barh([*names, "all five"], [*weights, sum(weights)], color=["C0"] * len(names) + ["C1"])
    ax1.axvline(BUDGET_BYTES / 1e6, color="C3", ls="--", lw=1, label="budget ~4 MB")
    ax1.set_xlabel("MB of float32 weights")
    ax1.set_title("weights per model and for the set")
    ax1.legend(fontsize=8, loc="lower right")
    labels = [f"{d['target']['name']} / {engine_label(d)}" for d in docs]
    code = [d["build"]["binary"]["text"] / 1e6 for d in docs]
    ram = [(d["build"]["binary"]["data"] + d["build"]["binary"]["bss"]) / 1e6 for d in docs]
    ys = range(len(docs))
    ax2.barh([y - 0.2 for y in ys], code, 0.4, label="text: code and constant weights (flash)")
    ax2.barh([y + 0.2 for y in ys], ram, 0.4, label="data + bss (RAM)")
    ax2.set_xscale("log")
    ax2.set_yticks(list(ys), labels, fontsize=8)
    ax2.invert_yaxis()
    ax2.set_xlabel("MB (log)")
    ax2.set_title("the harness binary: where the bytes go")
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)
    fig.tight_layout()
    return _png(fig)


def history_plot(docs: list[dict]) -> bytes | None:
    """Instructions per block (and per model) over the project's commits, per target and engine."""
    series: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for doc in sorted(docs, key=lambda d: d["created"]):
        figs = {(f.model): f.value for f in figures.of(doc) if f.metric == "instructions"}
        if figs:
            series[(doc["target"]["name"], engine_label(doc))][doc["project_commit"][:9]] = figs
    if not series:
        return None
    plt = _plt()
    keys = sorted(series)
    fig, axes = plt.subplots(len(keys), 1, figsize=(10, 2.2 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        commits = list(series[key])
        models = sorted({m for v in series[key].values() for m in v}, key=lambda m: (m == layout.SET, m))
        for k, model in enumerate(models):
            ys = [series[key][c].get(model) for c in commits]
            ax.plot(range(len(commits)), ys, "o-", ms=3, label=model, color="black" if model == layout.SET else f"C{k}")
        ax.set_yscale("log")
        ax.set_xticks(range(len(commits)), commits, fontsize=7)
        ax.set_title(f"{key[0]} / {key[1]}: instructions per block", fontsize=9)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return _png(fig)


def training_plot(checkpoints: Path) -> bytes | None:
    histories = []
    for path in sorted(Path(checkpoints).glob("*/history.json")):
        try:
            doc = json.loads(path.read_text())
            histories.append((doc["model"], doc["epochs"]))
        except (OSError, ValueError, KeyError):
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
            doc = json.loads(path.read_text())
            if doc.get("schema") == "rt-music-bench/peers/1" and doc["engines"]:
                return doc
        except (OSError, ValueError, KeyError, TypeError):
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
    labels = [f"{a['board']}: {a['engine']} ({'fits' if a['fit']['fits'] else 'does not fit'})" for a in assessed]
    ax.set_yticks(range(len(assessed)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("estimated ms per block for the whole set (log): ranges, not measurements")
    ax.set_title("Real boards: estimates from the emulated runs, and memory fit")
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=False))
    ax.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def summary_rows(docs: list[dict]) -> list[tuple]:
    rows = []
    for d in docs:
        s, b = d["set"], d["build"]["binary"]
        deadline = d["config"]["deadline_us"]
        worst = max(m["parity_max_abs_error"] for m in d["models"].values())
        instr = s["instructions_per_block"]
        if instr is None and d["timing"]["kind"] == "counted":
            instr = round(s["latency_us"]["p50"] * 1000)
        rows.append(
            (
                d["target"]["name"],
                engine_label(d),
                d["timing"]["kind"],
                f"{s['latency_us']['p50']:,.1f}",
                f"{s['latency_us']['p99']:,.1f}",
                f"{s['latency_us']['p99'] / deadline:.2%}",
                f"{s['latency_cold_us']['p50']:,.1f}" if s.get("latency_cold_us") else "-",
                s["deadline_misses"],
                f"{'ok' if d['parity_ok'] else 'FAIL'} {worst:.1e}",
                f"{sum(m['weight_bytes'] for m in d['models'].values()):,}",
                f"{b['text']:,}",
                f"{b['data'] + b['bss']:,}",
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
    "cold p50 (us)",
    "misses",
    "parity (max error)",
    "weights (bytes)",
    "text (bytes)",
    "RAM: data+bss (bytes)",
    "instructions/block",
    "commit",
)


AUDIO_HEAD = ("model", "target", "engine", "timing", "ns/sample (p50)", "real time", "instructions/sample", "parity")
AUDIO_NOTE = (
    "Models that take one step per audio sample (a block of 512 samples is 512 steps, in one call): "
    "ns per sample at the block's p50, and the field's real-time factor (seconds of audio per second of "
    "compute, from the mean). Emulated and counted runs are labelled in the timing column; they are no "
    "board's time."
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
                    d["timing"]["kind"],
                    f"{ps['ns_p50']:,.1f}",
                    f"{ps['real_time_factor']:,.0f}x",
                    "-" if ps["instructions"] is None else f"{ps['instructions']:,.0f}",
                    f"{'ok' if layout.within(m['parity_max_abs_error'], d['parity_tolerance']) else 'FAIL'} "
                    f"{m['parity_max_abs_error']:.1e}",
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


def validation_rows(models_dir: Path) -> tuple[tuple, list[tuple]] | None:
    try:
        doc = json.loads((Path(models_dir) / "validation.json").read_text())
    except (OSError, ValueError):
        return None
    paths = sorted({p for m in doc["models"] for p in m["max_abs_error"]})
    rows = [
        (
            m["model"],
            *(f"{m['max_abs_error'][p]:.2e}" if p in m["max_abs_error"] else "-" for p in paths),
            "ok" if m["ok"] else "FAIL",
        )
        for m in doc["models"]
    ]
    return ("model", *paths, "result"), rows


def precision_rows(checkpoints: Path) -> tuple[tuple, list[tuple]] | None:
    """What rounding the weights costs on the validation data (`python -m trainer evaluate`)."""
    try:
        doc = json.loads((Path(checkpoints) / "precision.json").read_text())
        models = doc["models"]
        order = ("float32", "float16", "int8")
        precisions = sorted(models[0]["values"], key=lambda p: order.index(p) if p in order else len(order))
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None

    def cell(m, p):
        value = m["values"][p]
        shown = f"{value:.2%}" if m["higher_is_better"] else f"{value:.3f}"
        return shown if m["acceptable"][p] else f"{shown} (over the bar)"

    return ("model", "metric", *precisions), [
        (m["model"], m["metric"], *(cell(m, p) for p in precisions)) for m in models
    ]


def markdown_table(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def html_table(head, rows) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def latest_layers(layers_dir: Path, warnings: list[str]) -> list[dict]:
    """The newest `bench layers` result of each target in `layers_dir` (none where it does not exist);
    a file that is no result is skipped, with a warning naming it."""
    if not Path(layers_dir).exists():
        return []
    _, docs, skipped = layer_results.load_all([layers_dir])
    warnings += skipped
    return [doc for doc in layer_results.latest(docs) if layers_columns(doc)]  # one with no figure: nothing to draw


def layers_blocks(doc: dict) -> list[tuple]:
    """The report's section for one layers result, as blocks both renderings share: ("h2"|"h3"|"p",
    text) or ("table", head, rows)."""
    blocks = [
        ("h2", f"Layer by layer on {doc['target']['name']} (`bench layers`)"),
        ("p", layers_intro(doc)),
        ("table", LAYERS_SUMMARY_HEAD, layers_summary_rows(doc)),
        ("p", "Per layer (the plot above draws the same figures):"),
        ("table", *layers_table(doc)),
    ]
    section = doc.get("rtneural_layer_bench")
    if section:
        means = "; ".join(f"{b}: {m:.2f} over {n} layers" for b, (m, n) in rtneural_bench.means(section).items())
        blocks += [
            ("h3", f"RTNeural's own {section['source']} beside ours, same backend"),
            (
                "p",
                f"Median of {section['repeats']} runs of {section['seconds']:g} s each, RTNeural commit "
                f"{section['rtneural_commit'][:12]}, built with {' '.join(section['flags'])}: "
                f"{rtneural_bench.NOTE}. Geometric mean of ours / layer_bench: {means or '-'}."
                + (f" Not in layer_bench: {', '.join(section['not_covered'])}." if section["not_covered"] else ""),
            ),
            ("table", rtneural_bench.HEAD, rtneural_bench.rows(section)),
        ]
    return blocks


def blocks_markdown(blocks: list[tuple]) -> list[str]:
    out = []
    for kind, *rest in blocks:
        text = markdown_table(*rest) if kind == "table" else {"h2": "## ", "h3": "### ", "p": ""}[kind] + rest[0]
        out += ["", text]
    return out


def blocks_html(blocks: list[tuple]) -> str:
    def one(kind, *rest):
        if kind == "table":
            return html_table(*rest)
        return (
            f"<p class=note>{html.escape(rest[0])}</p>" if kind == "p" else f"<{kind}>{html.escape(rest[0])}</{kind}>"
        )

    return "".join(one(*b) for b in blocks)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f0f0f0}td:first-child,td:nth-child(2),td:nth-child(3){text-align:left}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}.note{color:#555;font-size:13px}"""


def render(
    runs: list[Path],
    out: Path,
    checkpoints: Path | None,
    models_dir: Path | None,
    peers_dir: Path | None = None,
    layers_dir: Path | None = None,
) -> tuple[list[Path], list[str]]:
    docs, warnings = results.load_many(runs)
    if not docs:
        raise SuiteError("no valid result files to report on", runs[0])
    latest = ordered(figures.latest(docs))
    plots: dict[str, tuple[str, bytes]] = {}
    for target in sorted({d["target"]["name"] for d in latest}):
        plots[f"latency_{target}.png"] = (
            f"Latency on {target}",
            latency_plot(target, [d for d in latest if d["target"]["name"] == target]),
        )
    plots["memory.png"] = ("Memory: weights against the budget, and each binary's code and RAM", memory_plot(latest))
    history = history_plot(docs)
    if history:
        plots["instructions_history.png"] = ("Instructions per block over the project's commits", history)
    training = training_plot(checkpoints) if checkpoints else None
    if training:
        plots["training.png"] = ("Training: loss per epoch", training)
    comparison = latest_lineup(peers_dir) if peers_dir else None
    if comparison:
        plots["engines.png"] = ("Every engine side by side, with the roofline", lineup_plot(comparison))
        comparison_title = lineup.render(comparison).split("\n")[0]
        comparison_table = (lineup.HEAD, lineup.rows(comparison))
    layer_docs = latest_layers(layers_dir, warnings) if layers_dir else []
    for doc in layer_docs:
        target = doc["target"]["name"]
        plots[f"layers_{target}.png"] = (
            f"Layer by layer on {target}: each engine against {layers_reference_label(doc)}",
            layers_plot(doc),
        )
    assessed = boards.assess(docs, boards.load())
    if assessed:
        plots["boards.png"] = ("Real boards: estimated time per block and memory fit", boards_plot(assessed))
        board_table = (boards.HEAD, boards.rows(assessed))
    validation = validation_rows(models_dir) if models_dir else None
    precision = precision_rows(checkpoints) if checkpoints else None
    audio = audio_rows(latest)
    costs = precision_cost_rows(models_dir) if models_dir else None
    cost_note = (
        f"Against each model's reference outputs (PyTorch's, or the imported file's), on its test vectors: "
        f"signal-to-noise ratio, error-to-signal ratio (ESR) and the largest error. The bar: "
        f"{layout.INT8_SNR_BAR_DB:g} dB SNR."
    )

    newest = max(docs, key=lambda d: d["created"])
    intro = (
        f"Rendered by `bench report` from {len(docs)} result files (the newest {newest['created'][:19]} UTC, "
        f"commit {newest['project_commit'][:9]}); the latest run of each target and engine below. "
        "Deadline: one block of audio "
        f"({newest['config']['block_size']} samples at {newest['config']['sample_rate']} Hz = "
        f"{newest['config']['deadline_us'] / 1000:.2f} ms)."
    )
    kinds = "\n".join(f"- `{k}`: {v}" for k, v in KIND.items())
    md = [
        "# Benchmark report",
        "",
        intro,
        "",
        markdown_table(SUMMARY_HEAD, summary_rows(latest)),
        "",
        "Timing:",
        kinds,
        "",
        "## Plots",
        "",
    ]
    md += [f"- [{title}](plots/{name})" for name, (title, _) in plots.items()]
    if comparison:
        md += [
            "",
            "## Every engine side by side (`bench compare-engines`)",
            "",
            comparison_title,
            "",
            markdown_table(*comparison_table),
        ]
    for doc in layer_docs:
        md += blocks_markdown(layers_blocks(doc))
    if audio:
        md += ["", "## Audio models (one step per sample)", "", AUDIO_NOTE, "", markdown_table(AUDIO_HEAD, audio)]
    if costs:
        md += ["", "## What float16 and int8 cost each model", "", cost_note, ""]
        md += [markdown_table(PRECISION_COST_HEAD, costs)]
    if assessed:
        md += ["", "## Real boards (`bench boards`)", "", BOARDS_NOTE, "", markdown_table(*board_table)]
    if validation:
        md += ["", "## Export validation (max abs error against PyTorch)", "", markdown_table(*validation)]
    if precision:
        md += ["", "## What each weight precision costs (validation metric)", "", markdown_table(*precision)]
    if warnings:
        md += ["", "Skipped files:", *(f"- {w}" for w in warnings)]
    body = [
        f"<h1>Benchmark report</h1><p>{html.escape(intro)}</p>",
        html_table(SUMMARY_HEAD, summary_rows(latest)),
        "<ul class=note>" + "".join(f"<li><b>{k}</b>: {html.escape(v)}</li>" for k, v in KIND.items()) + "</ul>",
    ]
    for name, (title, png) in plots.items():
        body.append(
            f"<h2>{html.escape(title)}</h2><img alt='{name}' src='data:image/png;base64,"
            f"{base64.b64encode(png).decode()}'>"
        )
    if comparison:
        body.append(
            f"<h2>Every engine side by side</h2><p class=note>{html.escape(comparison_title)}</p>"
            + html_table(*comparison_table)
        )
    body += [blocks_html(layers_blocks(doc)) for doc in layer_docs]
    if audio:
        body.append(
            f"<h2>Audio models (one step per sample)</h2><p class=note>{html.escape(AUDIO_NOTE)}</p>"
            + html_table(AUDIO_HEAD, audio)
        )
    if costs:
        body.append(
            f"<h2>What float16 and int8 cost each model</h2><p class=note>{html.escape(cost_note)}</p>"
            + html_table(PRECISION_COST_HEAD, costs)
        )
    if assessed:
        body.append(f"<h2>Real boards</h2><p class=note>{html.escape(BOARDS_NOTE)}</p>" + html_table(*board_table))
    if validation:
        body.append("<h2>Export validation (max abs error against PyTorch)</h2>" + html_table(*validation))
    if precision:
        body.append("<h2>What each weight precision costs (validation metric)</h2>" + html_table(*precision))
    if warnings:
        body.append("<p class=note>Skipped: " + "; ".join(html.escape(w) for w in warnings) + "</p>")
    page = (
        f"<!doctype html><html><head><meta charset=utf-8><title>rt-music-bench report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(body)}</body></html>\n"
    )
    out = Path(out)
    written = []
    for name, (_, png) in plots.items():
        atomic.write_bytes(out / "plots" / name, png)
        written.append(out / "plots" / name)
    atomic.write_text(out / "README.md", "\n".join(md) + "\n")
    atomic.write_text(out / "index.html", page)
    return [out / "README.md", out / "index.html", *written], warnings


DEFAULT_OUT = layout.PROJECT / "reports"
BOARDS_NOTE = (
    "Estimates, not measurements: for the latest emulated run of each target and engine, each board "
    "that runs it (bench/boards.json, every figure with its source): a roofline (peak multiply-adds "
    "and the bandwidth of the memory the weights fit in), instructions x clock over a range of cycles "
    "per instruction (Cortex-M7, counted by QEMU), and llvm-mca on the hottest inner loop. Fit: the "
    "linked image's code and weights, the model objects, stack and heap placed in the board's memories."
)
