"""PyTorch: a module from Python (`from_module`), or a TorchScript file (`read`).

from_module(module, input_size, name) converts with exporter.convert.to_json (Linear, LSTM, GRU,
Conv1d, BatchNorm1d, PReLU, activations, in the order forward() runs them) and takes as reference
torch's own outputs on a fixed test signal: each layer of that chain run by torch one step at a time
with its state carried (an RNN's (h, c), a Conv1d's past frames), in float64, as RTNeural runs them.

TorchScript (`torch.jit.save`: a zip archive holding `<name>/code/`, `<name>/data.pkl`, tensors):
torch.jit.load has no safe mode. Loading one compiles and runs code the file carries, and its
unpickler is not hardened against hostile files (PyTorch SECURITY.md "TorchScript models": treat them
"the same way as locally executable code from an unknown source"; pytorch/pytorch#143403, "There is
no safe mode for jit.load"; #77573: "torch::jit::load should only be used with trusted inputs").
So `read` refuses unless the caller says the file is trusted (trust_code=True), bounds the file and
its unpacked size first, and loads with map_location="cpu". It then rebuilds plain torch modules from
the script module's layers in declared order (their `original_name`, sizes and weights), converts
those, and checks that the script module's own forward() agrees with that chain where it can be
called on [1, steps, inputs]. A pickled `torch.save` file (a .pt/.pth of a module or state dict) is
refused: nothing here unpickles.
"""

from __future__ import annotations

import copy
import io
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from common import jsonfile
from common.errors import SuiteError
from exporter.formats import RATES, Imported
from exporter.formats._shared import MISSING, checked, name_from

FORMAT = "pytorch"
TORCHSCRIPT = "torchscript"
MAX_UNPACKED = 256 << 20  # the archive's members together
REFERENCE_STEPS = 512
PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
NOT_PICKLES = (
    "a pickled torch.save file: unpickling runs code from the file, so this suite never does; save the module with "
    "torch.jit.save (TorchScript), or pass it to exporter.formats.pytorch.from_module in Python"
)
UNTRUSTED = (
    "TorchScript is a program: torch.jit.load runs code from the file and PyTorch has no safe mode for it; "
    "load it only if you trust its author (trust_code=True)"
)


def signal(input_size: int, steps: int = REFERENCE_STEPS) -> np.ndarray:
    """The fixed input the reference is computed on: [steps][input_size], seeded, in [-1, 1]."""
    rng = np.random.default_rng(20240611)
    t = np.arange(steps)[:, None] / 48.0
    phase = rng.uniform(0, 2 * np.pi, input_size)
    return 0.6 * np.sin(t * (1 + np.arange(input_size)) + phase) + 0.3 * rng.uniform(-1, 1, (steps, input_size))


def torch_steps(module, input_size: int, x: np.ndarray, name: str = "model") -> np.ndarray:
    """The chain's outputs, torch running each layer one step at a time, state carried, in float64."""
    import torch
    from torch import nn

    from exporter import convert

    chain = [leaf for _, leaf in convert.leaves(copy.deepcopy(module).double().eval(), name)]
    states: list = [None] * len(chain)
    out = []
    with torch.no_grad():
        for frame in np.asarray(x, dtype=np.float64):
            v = torch.from_numpy(frame)
            for i, leaf in enumerate(chain):
                if isinstance(leaf, (nn.LSTM, nn.GRU)):
                    y, states[i] = leaf(v[None, None, :], states[i])
                    v = y[0, 0]
                elif isinstance(leaf, nn.Conv1d):
                    span = (leaf.kernel_size[0] - 1) * leaf.dilation[0] + 1
                    if states[i] is None:
                        states[i] = torch.zeros(v.shape[0], span, dtype=torch.float64)
                    states[i] = torch.cat([states[i][:, 1:], v[:, None]], dim=1)
                    v = leaf(states[i][None])[0, :, -1]
                elif isinstance(leaf, (nn.Linear, nn.BatchNorm1d, nn.PReLU)):
                    v = leaf(v[None])[0]
                else:  # activations (softmax over the features: dim -1 or 2 of [batch, time, features])
                    v = leaf(v[None, None])[0, 0]
            out.append(v.numpy().copy())
    return np.stack(out)


def from_module(module, input_size: int, name: str, rate: str = "block") -> Imported:
    """An nn.Module of supported layers as an Imported, with torch's own step-by-step outputs on
    signal() as its reference; SuiteError (one line) when it cannot be converted."""
    from exporter import convert
    from exporter.layers import ExportError

    if rate not in RATES:
        raise SuiteError(f"rate {rate!r}: expected one of {', '.join(RATES)}")
    try:
        model_json = convert.to_json(module, input_size, name)
        x = signal(input_size)
        y = torch_steps(module, input_size, x, name)
    except ExportError as exc:
        raise SuiteError(str(exc)) from None
    checked(model_json, None)
    return Imported(name, FORMAT, model_json, rate, reference=(x, y), metadata={"source": type(module).__name__})


def _kind(data: bytes) -> str | None:
    """ "torchscript", "pickle", "damaged" or None, from a file's content."""
    head = data[:4]
    if head[:2] in PICKLE_PROTOCOLS:
        return "pickle"
    if head != b"PK\x03\x04":
        return None
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return "damaged"  # a zip's local header without its central directory: cut short
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
    except zipfile.BadZipFile:
        return None
    if any("/code/" in n for n in names) and any(n.endswith("/data.pkl") for n in names):
        return "torchscript"
    if any(n.endswith("data.pkl") for n in names):
        return "pickle"  # torch.save's zip layout: a pickle and its tensors, no code
    return None


def _read(path: Path) -> bytes:
    return jsonfile.read_bytes(path, jsonfile.IMPORT_BYTES, "TorchScript model", MISSING)


def detect(data_or_path) -> bool:
    """A file torch wrote (its bytes, or its path): TorchScript, which `read` loads when trusted, or a
    pickle, which it refuses."""
    if isinstance(data_or_path, (str, Path)):
        try:
            data_or_path = _read(Path(data_or_path))
        except SuiteError:
            return False
    return isinstance(data_or_path, bytes) and _kind(data_or_path) is not None


def rebuild(script, path):
    """Plain torch modules, in declared order, from a loaded script module's layers."""
    from torch import nn

    def build(layer, where):
        kind = getattr(layer, "original_name", type(layer).__name__)

        def get(attr):
            return getattr(layer, attr)

        try:
            if kind == "Linear":
                m = nn.Linear(get("in_features"), get("out_features"), bias=get("bias") is not None)
            elif kind in ("LSTM", "GRU"):
                m = getattr(nn, kind)(
                    get("input_size"),
                    get("hidden_size"),
                    num_layers=get("num_layers"),
                    bias=get("bias"),
                    batch_first=get("batch_first"),
                    bidirectional=get("bidirectional"),
                    **({"proj_size": get("proj_size")} if kind == "LSTM" else {}),
                )
            elif kind == "Conv1d":
                m = nn.Conv1d(
                    get("in_channels"),
                    get("out_channels"),
                    get("kernel_size")[0],
                    stride=get("stride")[0],
                    padding=get("padding") if isinstance(get("padding"), str) else get("padding")[0],
                    dilation=get("dilation")[0],
                    groups=get("groups"),
                    bias=get("bias") is not None,
                    padding_mode=get("padding_mode"),
                )
            elif kind == "BatchNorm1d":
                m = nn.BatchNorm1d(
                    get("num_features"),
                    eps=get("eps"),
                    affine=get("affine"),
                    track_running_stats=get("track_running_stats"),
                )
            elif kind == "PReLU":
                m = nn.PReLU(get("num_parameters"))
            elif kind == "ELU":
                m = nn.ELU(alpha=get("alpha"))
            elif kind == "Softmax":
                m = nn.Softmax(dim=get("dim"))
            elif kind in ("Tanh", "ReLU", "Sigmoid"):
                m = getattr(nn, kind)()
            else:
                return None
            m.load_state_dict({k: v.detach().clone() for k, v in layer.state_dict().items()})
        except (AttributeError, RuntimeError, TypeError, ValueError, IndexError) as exc:
            text = str(exc).strip().splitlines()
            raise SuiteError(
                f"layer {where} ({kind}): cannot be rebuilt ({text[0] if text else type(exc).__name__})", path
            ) from None
        return m.float()

    layers: list[tuple[str, object]] = []

    def walk(module, prefix):
        for child_name, child in module.named_children():
            where = f"{prefix}{child_name}"
            kind = getattr(child, "original_name", type(child).__name__)
            own = any(True for _ in child.parameters(recurse=False))
            children = list(child.children())
            built = build(child, where)
            if built is not None:
                layers.append((where, built))
            elif children and not own:
                walk(child, where + ".")
            else:
                supported = "Linear, LSTM, GRU, Conv1d, BatchNorm1d, PReLU, Tanh, ReLU, Sigmoid, Softmax, ELU"
                raise SuiteError(f"layer {len(layers)} ({where}: {kind}): not supported; supported: {supported}", path)

    walk(script, "")
    if not layers:
        raise SuiteError("no layers in the TorchScript module", path)
    return nn.Sequential(OrderedDict((n.replace(".", "_"), m) for n, m in layers))


def _input_size(first) -> int | None:
    for attr in ("input_size", "in_features", "in_channels", "num_features"):
        value = getattr(first, attr, None)
        if isinstance(value, int):
            return value
    return None


def read(
    path: str | Path,
    rate: str | None = None,
    trust_code: bool = False,
    input_size: int | None = None,
    data: bytes | None = None,
):
    """A TorchScript file as [Imported]; the reference is torch's own step-by-step outputs. `data`:
    the file's bytes where the caller has read them (exporter.formats.read), else read here."""
    path = Path(path)
    data = _read(path) if data is None else data
    kind = _kind(data)
    if kind == "pickle":
        raise SuiteError(NOT_PICKLES, path)
    if kind == "damaged":
        raise SuiteError("a damaged zip archive (truncated?), not a TorchScript file that can be read", path)
    if kind != "torchscript":
        raise SuiteError("not a TorchScript archive (torch.jit.save's zip with code/ and data.pkl)", path)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        unpacked = sum(i.file_size for i in z.infolist())
    if unpacked > MAX_UNPACKED:
        raise SuiteError(f"unpacks to {unpacked:,} bytes: too large for a TorchScript model", path)
    if not trust_code:
        raise SuiteError(UNTRUSTED, path)
    import torch

    try:
        script = torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as exc:  # whatever torch raises on a damaged archive, on one line
        text = str(exc).strip().splitlines()
        raise SuiteError(f"torch.jit.load failed: {text[0] if text else type(exc).__name__}", path) from None
    chain = rebuild(script, path)
    n_in = input_size or _input_size(next(iter(chain)))
    if n_in is None:
        raise SuiteError("its first layer does not say its input size: give input_size", path)
    name = name_from(path)
    imported = from_module(chain, n_in, name, rate or "block")
    x, y = imported.reference
    imported.format = TORCHSCRIPT
    imported.metadata = {"source": getattr(script, "original_name", "ScriptModule"), "layers": list(chain._modules)}
    try:
        with torch.no_grad():
            got = script(torch.from_numpy(x[None].astype(np.float32)))
        got = got[0] if isinstance(got, (tuple, list)) else got
        got = got.detach().double().numpy()[0]
    except Exception:  # a forward() that takes another layout or more arguments: not checked
        imported.metadata["forward_checked"] = False
        return [imported]
    if got.shape != y.shape:  # an unpadded Conv1d shortens the sequence: no step lines up with the stream's
        imported.metadata["forward_checked"] = False
        return [imported]
    if not np.abs(got - y).max() <= 1e-4:
        raise SuiteError(
            "its forward() does not compute the chain of its layers in declared order, which is what RTNeural runs",
            path,
        )
    imported.metadata["forward_checked"] = True
    return [imported]
