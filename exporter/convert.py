"""PyTorch module -> RTNeural's Keras-style JSON, one layer unit at a time.

RTNeural runs a plain chain of layers, so the converter first proves the module is one, and takes
the order from what runs, never from the order the layers were declared in: an nn.Sequential is a
chain by construction; any other module is traced (torch.fx), and its forward() must call every
layer once, each on the previous one's output.
"""

from __future__ import annotations

import inspect
import operator

import numpy as np
import torch
from torch import fx, nn

from exporter.layers import BY_TORCH_TYPE, ExportError, activation, out_size

MERGES_ACTIVATION = ("dense", "conv1d")  # JSON layers that carry their activation in a field
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# What forward() may do to the value between two layers besides passing it on: move its axes
# (Conv1d and BatchNorm1d take [batch, channels, time]) and take an RNN's output from its
# (output, state) pair.
LAYOUT_METHODS = frozenset(["transpose", "permute", "contiguous"])
LAYOUT_FUNCTIONS = (torch.transpose, torch.permute)
NOT_A_CHAIN = "not a chain of layers"


def is_leaf(module: nn.Module) -> bool:
    """A layer: a kind the converter knows, a module with weights of its own, or one without
    children. Anything else (Sequential, ModuleList, a module of modules) holds layers."""
    if isinstance(module, CONTAINERS):
        return False
    own_parameters = any(True for _ in module.parameters(recurse=False))
    return type(module) in BY_TORCH_TYPE or own_parameters or not list(module.children())


class LayerTracer(fx.Tracer):
    """Records each layer as one call_module node and traces through everything that holds layers."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return is_leaf(m)


def leaves(module: nn.Module, model_name: str, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """(dotted name, layer) of every layer in the order forward() runs them. An ExportError names
    the module and why when it is not a chain: a layer skipped, reused, branched around, or fed
    something other than the previous layer's output."""
    if not prefix and is_leaf(module):
        return [(type(module).__name__, module)]  # a bare layer: a chain of one
    if isinstance(module, nn.Sequential):
        order = []
        for name, child in module._modules.items():  # every entry, a module placed twice included
            if child is not None:
                full = f"{prefix}{name}"
                order += [(full, child)] if is_leaf(child) else leaves(child, model_name, full + ".")
    else:
        order = traced(module, model_name, prefix)
    first: dict[int, str] = {}
    for name, leaf in order:
        if id(leaf) in first:
            reason = f"is the same module as {first[id(leaf)]}, a layer used twice: {NOT_A_CHAIN}"
            raise ExportError(model_name, name, reason)
        first[id(leaf)] = name
    return order


def traced(module: nn.Module, model_name: str, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """The layers of a module other than a Sequential, in the order its traced forward() calls
    them. Arguments after the input must have defaults, and are traced at them (StreamingModel's
    `state=None`: a reset state, which is what the exported model starts from)."""
    where = prefix.rstrip(".") or type(module).__name__
    if type(module).forward is nn.Module.forward:
        raise ExportError(model_name, where, "has no forward(), so the order of its layers is unknown")
    params = list(inspect.signature(module.forward).parameters.values())
    if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
        raise ExportError(model_name, where, "forward() takes no input tensor")
    concrete = {}
    for p in params[1:]:
        if p.default is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ExportError(model_name, where, f"forward() takes {p.name} besides its input: {NOT_A_CHAIN}")
        concrete[p.name] = p.default
    try:
        graph = LayerTracer().trace(module, concrete_args=concrete or None)
    except Exception as exc:  # whatever stops the trace (control flow on values, a missing input), on one line
        text = str(exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise ExportError(model_name, where, f"forward() cannot be traced ({reason}): {NOT_A_CHAIN}") from None
    return [(prefix + target, module.get_submodule(target)) for target in chain(graph, module, model_name, prefix)]


def _is_layout(node: fx.Node) -> bool:
    return (node.op == "call_method" and node.target in LAYOUT_METHODS) or (
        node.op == "call_function" and node.target in LAYOUT_FUNCTIONS
    )


def _what(node: fx.Node, prefix: str) -> str:
    """A node as the messages name it."""
    if node.op == "placeholder":
        return "the input"
    if node.op == "call_module":
        return f"{prefix}{node.target}'s output"
    if _is_layout(node) or (node.op == "call_function" and node.target is operator.getitem and node.args[1] == 0):
        return _what(node.args[0], prefix)  # the same value, moved or taken out of an RNN's result
    if node.op == "call_method":
        return f".{node.target}()"
    if node.op == "get_attr":
        return f"the tensor {prefix}{node.target}"
    return getattr(node.target, "__name__", str(node.target))


def _declared(module: nn.Module, prefix: str = ""):
    """Dotted names of the layers a module holds (not looking inside a layer)."""
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if is_leaf(child):
            yield full
        else:
            yield from _declared(child, full + ".")


def chain(graph: fx.Graph, root: nn.Module, model_name: str, prefix: str = "") -> list[str]:
    """The layers (call_module targets) of a traced forward() in call order, once it is proved a
    single chain from the input to the returned value: every layer called once, on the previous
    layer's output, through axis moves only; an RNN's state (element 1 of its result) may only be
    returned, as StreamingModel returns it."""
    where = prefix.rstrip(".") or type(root).__name__
    nodes = list(graph.nodes)
    inputs = [n for n in nodes if n.op == "placeholder"]
    # The arguments traced at their defaults, and the checks fx adds that they keep them.
    guards = set(inputs[1:])
    for node in nodes:
        if node.op == "call_function" and node.all_input_nodes and set(node.all_input_nodes) <= guards:
            guards.add(node)
    current = inputs[0]  # the value the chain has reached
    layer: fx.Node | None = None  # the last layer called
    order: list[str] = []
    states: set[fx.Node] = set()

    def refuse(name: str, reason: str):
        raise ExportError(model_name, name, f"{reason}: {NOT_A_CHAIN}")

    def others(node: fx.Node) -> list[fx.Node]:
        found: list[fx.Node] = []
        fx.node.map_arg((node.args[1:], node.kwargs), found.append)
        return found

    for node in nodes:
        state = next((n for n in node.all_input_nodes if n in states), None)
        if state is not None and node.op != "output":
            name = f"{prefix}{state.args[0].target}"
            refuse(name, f"forward uses {name}'s state (element 1 of its result) for more than returning it")
        if node in guards:
            if any(user not in guards for user in node.users):
                refuse(where, f"forward() uses {node.target} besides its input")
        elif node.op == "placeholder":
            continue  # the input
        elif node.op == "call_module":
            name = f"{prefix}{node.target}"
            source = node.args[0] if node.args else None
            if f"{node.target}" in order:
                refuse(name, f"forward calls {name} a second time")
            if source is not current:
                got = _what(source, prefix) if isinstance(source, fx.Node) else "no tensor"
                was = _what(current, prefix)
                refuse(name, f"forward calls {name} on {got}, not on {was}, in a branch or skip")
            if others(node):
                refuse(name, f"forward calls {name} with more than its input ({_what(others(node)[0], prefix)})")
            order.append(str(node.target))
            current = layer = node
        elif node.op == "call_function" and node.target is operator.getitem and node.args[0] is layer:
            name = f"{prefix}{layer.target}"
            index = node.args[1]
            recurrent = isinstance(root.get_submodule(str(layer.target)), nn.RNNBase)
            if not recurrent or index not in (0, 1) or (index == 0 and current is not layer):
                refuse(name, f"forward takes [{index!r}] of {name}'s output")
            if index == 0:
                current = node
            else:
                states.add(node)
        elif _is_layout(node) and node.args[0] is current and not others(node):
            current = node
        elif node.op == "output":
            returned: list[fx.Node] = []
            fx.node.map_arg(node.args, returned.append)
            if current not in returned:
                refuse(where, f"forward does not return {_what(current, prefix)}")
            extra = [n for n in returned if n not in states and n is not current]
            if extra or returned.count(current) > 1:
                refuse(where, f"forward returns {_what((extra or [current])[0], prefix)} besides the last layer's")
        elif node.op == "get_attr":
            refuse(where, f"forward uses {_what(node, prefix)} outside its layer")
        else:
            refuse(where, f"forward computes {_what(node, prefix)} on the way through its layers")
    for name in _declared(root):
        if name not in order:
            refuse(prefix + name, f"forward never calls {prefix}{name}")
    return order


def to_json(module: nn.Module, input_size: int, model_name: str) -> dict:
    """Convert; an ExportError names the model, the layer and why RTNeural cannot run it."""
    layers: list[dict] = []
    size = input_size
    for name, leaf in leaves(module, model_name):
        unit = BY_TORCH_TYPE.get(type(leaf))
        if unit is None:
            raise ExportError(model_name, name, f"{type(leaf).__name__} is not a layer RTNeural runs")
        if unit is activation:
            problem = activation.check(leaf)
            if problem:
                raise ExportError(model_name, name, problem)
        try:
            entries = unit.from_torch(leaf, size)
        except ValueError as exc:
            raise ExportError(model_name, name, str(exc)) from None
        for e in entries:
            for w in e["weights"]:
                if not np.isfinite(w).all():
                    bad = int((~np.isfinite(w)).sum())
                    raise ExportError(model_name, name, f"{bad} weight(s) are NaN or Inf")
            if (
                e["type"] == "activation"
                and layers
                and layers[-1]["type"] in MERGES_ACTIVATION
                and not layers[-1]["activation"]
            ):
                layers[-1]["activation"] = e["activation"]
            else:
                layers.append(e)
            size = out_size(e)
    return {"in_shape": [None, None, int(input_size)], "layers": layers}
