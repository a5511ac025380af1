"""Reading a module by tracing its computation (``torch.fx``), not by attribute names.

:func:`trace` records what ``forward`` does as a graph of calls: submodules of ``torch.nn`` (and
any classes given as ``leaves``) stay single calls, everything else (user blocks, containers of any
name, loops over them) is inlined, plain Python numbers (a step size ``self.dt = 0.3``) become
constants, and extra forward arguments are fixed to the values given (``--forward-kwargs``).
The readers match patterns on this graph (:func:`residual_steps`: the updates ``s + h F(s)`` of
a residual stack) and name every node outside the pattern when they refuse (:func:`describe`).

Nothing here runs the module differently: the graph calls the module's own submodules and
parameters, and :func:`run_recording` executes it node by node (an ``fx.Interpreter``) to
record intermediate values, which the readers compare with the module's own ``forward`` output.
"""

from __future__ import annotations

import inspect
import operator
from dataclasses import dataclass, field

import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

from .._errors import ModuleFormError

__all__ = ["trace", "forward_parameters", "describe", "pass_through", "ActivationCall", "LinearCall", "ResidualStep", "residual_steps",
           "run_recording", "ACTIVATIONS"]

#: activation kind of modules, functions and tensor methods
ACTIVATIONS = {
    nn.Tanh: "tanh", nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Identity: "identity",
    torch.tanh: "tanh", F.tanh: "tanh", torch.relu: "relu", F.relu: "relu", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    "tanh": "tanh", "relu": "relu", "sigmoid": "sigmoid",
}
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_"}
_MUL = {operator.mul, operator.imul, torch.mul, "mul", "mul_"}
_DIV = {operator.truediv, torch.div, "div", "div_"}
_RANDOM = {torch.randn, torch.rand, torch.randn_like, torch.rand_like, torch.normal, torch.bernoulli, F.dropout, "normal_", "uniform_",
           "bernoulli_"}


_SYMBOLS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.matmul: "@", operator.neg: "-x",
            operator.pow: "**", operator.iadd: "+=", operator.imul: "*="}


def pass_through(gm: fx.GraphModule, target: str) -> list[fx.Node]:
    """The computations of a traced forward besides calling submodule ``target`` and taking items of its result (empty when the
    forward only calls it and returns what it returned)."""
    call = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == target]
    extra = []
    for n in gm.graph.nodes:
        if n.op not in ("call_module", "call_function", "call_method") or n in call:
            continue
        if n.op == "call_function" and n.target is operator.getitem and n.args[0] in call:
            continue
        extra.append(n)
    output = next(n for n in gm.graph.nodes if n.op == "output")
    outs = output.args[0] if isinstance(output.args[0], (tuple, list)) else (output.args[0],)
    if not call or not all(o in call or (isinstance(o, fx.Node) and o.op == "call_function" and o.target is operator.getitem
                                         and o.args[0] in call) for o in outs):
        extra = extra or [output]
    return extra


class _Tracer(fx.Tracer):
    def __init__(self, leaves=()):
        super().__init__()
        self.leaves = tuple(leaves)

    def is_leaf_module(self, m, qualname):
        return isinstance(m, self.leaves) or super().is_leaf_module(m, qualname)


def forward_parameters(module: nn.Module) -> list[inspect.Parameter]:
    """The parameters of ``module.forward`` (without ``self``)."""
    try:
        return list(inspect.signature(module.forward).parameters.values())
    except (TypeError, ValueError):
        return []


def trace(module: nn.Module, n_inputs: int = 1, forward_kwargs: dict | None = None, leaves=()) -> fx.GraphModule:
    """The ``fx`` graph of ``module.forward`` with its first ``n_inputs`` arguments as inputs.

    Every other argument must have a default or be given in ``forward_kwargs`` (fixed in the
    graph); otherwise the module is refused with the fix. A forward that cannot be traced
    (control flow on tensor values) is refused with ``hjsym_controls()`` as the way out.
    """
    forward_kwargs = dict(forward_kwargs or {})
    params = [p for p in forward_parameters(module) if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    unknown = [k for k in forward_kwargs if k not in {p.name for p in params}]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in forward_parameters(module)):
        raise ModuleFormError(f"{type(module).__name__}.forward has no argument {', '.join(map(repr, unknown))}",
                              f"give --forward-kwargs only for arguments of forward ({', '.join(p.name for p in params)})")
    needed = [p.name for p in params[n_inputs:] if p.default is p.empty and p.name not in forward_kwargs]
    if needed:
        example = ", ".join(f'"{n}": ...' for n in needed)
        raise ModuleFormError(f"{type(module).__name__}.forward needs the argument(s) {', '.join(needed)} besides its input",
                              f"pass them with --forward-kwargs '{{{example}}}' (Python: forward_kwargs={{...}}), or give them defaults")
    concrete = {p.name: forward_kwargs.get(p.name, p.default) for p in params[n_inputs:]}
    try:
        graph = _Tracer(leaves).trace(module, concrete_args=concrete)
    except Exception as exc:  # noqa: BLE001 - fx raises many kinds; all mean the same to the user
        raise ModuleFormError(
            f"{type(module).__name__}.forward could not be traced ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            "avoid Python control flow on tensor values in forward, or define hjsym_controls() (see 'Bring your own network')",
        ) from None
    for node in list(graph.nodes):  # fx asserts that fixed None arguments are None: no computation of the module's
        if node.op == "call_function" and getattr(node.target, "__name__", "") == "_assert_is_none" and not node.users:
            graph.erase_node(node)
    return fx.GraphModule(module, graph)


def describe(gm: fx.GraphModule, node: fx.Node) -> str:
    """A node as a user reads it: ``blocks.2.1 (LayerNorm)``, ``torch.sin``, ``.mul()``, ``2 * ...``."""
    if node.op == "call_module":
        return f"{node.target} ({type(gm.get_submodule(node.target)).__name__})"
    if node.op == "call_function":
        name = getattr(node.target, "__name__", str(node.target))
        symbol = _SYMBOLS.get(node.target)
        if symbol is not None:
            return f"{name} ({symbol})"
        mod = getattr(node.target, "__module__", "") or ""
        prefix = "torch." if mod.startswith("torch") and not mod.startswith("torch.nn") else ("F." if "functional" in mod else "")
        return f"{prefix}{name}"
    if node.op == "call_method":
        return f".{node.target}()"
    if node.op == "get_attr":
        return f"the attribute {node.target}"
    return str(node.target)


def _kind(gm: fx.GraphModule, node: fx.Node):
    if node.op == "call_module":
        sub = gm.get_submodule(node.target)
        return ACTIVATIONS.get(type(sub))
    if node.op in ("call_function", "call_method"):
        try:
            return ACTIVATIONS.get(node.target)
        except TypeError:
            return None
    return None


def _is(node, targets) -> bool:
    if not isinstance(node, fx.Node) or node.op not in ("call_function", "call_method"):
        return False
    try:
        return node.target in targets
    except TypeError:
        return False


@dataclass
class LinearCall:
    """A linear map ``W z + b`` in the graph: the module path (or parameter paths) of its weight and bias."""

    weight: str
    bias: str | None
    label: str


@dataclass
class ActivationCall:
    kind: str
    label: str


@dataclass
class ResidualStep:
    """One update ``s <- s + h F(s)``: the state node it reads, the node it writes, ``h`` and the layers of ``F``."""

    state: fx.Node
    new_state: fx.Node
    h: float
    layers: list = field(default_factory=list)  # LinearCall / ActivationCall in the order F applies them
    nodes: set = field(default_factory=set)


def _scalar(gm, node):
    """The value of a step-size operand: a Python number, or a 0-dim tensor attribute (None otherwise)."""
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        return float(node)
    if isinstance(node, fx.Node) and node.op == "get_attr":
        value = _attr(gm, node.target)
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            return float(value.detach().reshape(()))
    return None


def _attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _field_layers(gm, node, state, used: set):
    """``(layers, None)``: ``F`` as a chain of linear maps and activations from ``state`` to ``node``; ``(None, bad)`` naming
    the first node (from the output back) that is neither."""
    layers = []
    while node is not state:
        if not isinstance(node, fx.Node):
            return None, node
        used.add(node)
        if node.op == "call_module" and isinstance(gm.get_submodule(node.target), nn.Linear):
            lin = gm.get_submodule(node.target)
            layers.append(LinearCall(f"{node.target}.weight", f"{node.target}.bias" if lin.bias is not None else None,
                                     f"{node.target} (Linear)"))
            node = node.args[0]
        elif node.op == "call_function" and node.target is F.linear:
            w = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
            b = node.args[2] if len(node.args) > 2 else node.kwargs.get("bias")
            if not (isinstance(w, fx.Node) and w.op == "get_attr") or (b is not None and not (isinstance(b, fx.Node) and b.op == "get_attr")):
                return None, node
            used.update(n for n in (w, b) if isinstance(n, fx.Node))
            layers.append(LinearCall(w.target, b.target if b is not None else None, f"F.linear({w.target})"))
            node = node.args[0]
        elif _kind(gm, node) is not None and len(node.args) >= 1:
            layers.append(ActivationCall(_kind(gm, node), describe(gm, node)))
            node = node.args[0]
        else:
            return None, node
    return list(reversed(layers)), None


def _update(gm, add: fx.Node, state: fx.Node):
    """``(h, F node)`` when ``add`` is ``state + h * F`` / ``state + F * h`` / ``state + F / c`` / ``state + F``."""
    a, b = add.args[0], add.args[1] if len(add.args) > 1 else add.kwargs.get("other")
    other = b if a is state else a
    alpha = add.kwargs.get("alpha", 1.0)
    h = 1.0
    if _is(other, _MUL) and len(other.args) == 2:
        for x, y in (other.args, other.args[::-1]):
            c = _scalar(gm, x)
            if c is not None and isinstance(y, fx.Node):
                return h * c * alpha, y, {other} | ({x} if isinstance(x, fx.Node) else set())
    if _is(other, _DIV) and len(other.args) == 2:
        c = _scalar(gm, other.args[1])
        if c is not None and c != 0 and isinstance(other.args[0], fx.Node):
            return alpha / c, other.args[0], {other} | ({other.args[1]} if isinstance(other.args[1], fx.Node) else set())
    return alpha, other, set()


def residual_steps(gm: fx.GraphModule, parse_fields: bool = True) -> tuple[list[ResidualStep], fx.Node]:
    """The residual updates of a traced stack, in order, and the node the forward returns.

    Starting from the input ``s``, each ``add`` that reads the current state and something computed
    from it is one step; with ``parse_fields`` its ``F`` is read as linear maps and activations.
    Raises :class:`ModuleFormError` naming the first computation outside the pattern.
    """
    placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
    output = next(n for n in gm.graph.nodes if n.op == "output")
    name = type(gm).__name__ if not hasattr(gm, "_hjsym_name") else gm._hjsym_name
    random = [n for n in gm.graph.nodes if _is(n, _RANDOM) or (n.op == "call_module" and isinstance(gm.get_submodule(n.target), nn.Dropout)
                                                             and gm.get_submodule(n.target).p > 0)]
    if random:
        raise ModuleFormError(f"{name}.forward draws random numbers ({describe(gm, random[0])}): its step is random",
                              "check the deterministic module (no noise or dropout); a noisy ResNet is checked by the Kolmogorov checks")
    state = placeholders[0]
    steps = []
    while True:
        users = [u for u in state.users if _is(u, _ADD) and state in u.args]
        if not users:
            break
        add = users[0]
        h, fnode, extra = _update(gm, add, state)
        step = ResidualStep(state, add, h, nodes={add} | extra)
        if parse_fields:
            layers, bad = _field_layers(gm, fnode, state, step.nodes)
            if layers is None:
                raise ModuleFormError(
                    f"{name}: residual step {len(steps)} computes {describe(gm, bad)}, which is not a linear map or an activation "
                    "(the field F is read as Linear -> activation -> Linear; normalisation, dropout or other layers cannot be mapped)",
                    "use blocks of nn.Linear and an activation (module or function), or define hjsym_controls()")
            step.layers = layers
        steps.append(step)
        state = add
    out = output.args[0]
    if out is not state:
        after = _first_outside(gm, out, state)
        where = f"after its last residual step ({len(steps)} found)" if steps else "and has no residual step s + h F(s)"
        raise ModuleFormError(
            f"{name}.forward computes {describe(gm, after)} {where}: that part lies outside the residual stack",
            "pass the stack itself (forward(s) returning the last state) and apply anything after it in your loss")
    return steps, out


def _first_outside(gm, node, stop):
    """The earliest call on the path from ``stop`` to ``node`` (what to name in a refusal)."""
    chain = []
    while isinstance(node, fx.Node) and node is not stop and node.op != "placeholder":
        chain.append(node)
        nxt = [a for a in node.args if isinstance(a, fx.Node) and a.op != "get_attr"]
        if not nxt:
            break
        node = nxt[0]
    return chain[-1] if chain else node


def run_recording(gm: fx.GraphModule, nodes, *args) -> tuple[object, list]:
    """Run the graph on ``args`` (autograd on) and return its output and the values of ``nodes``."""
    wanted = {n: i for i, n in enumerate(nodes)}
    seen = [None] * len(nodes)

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            value = super().run_node(n)
            if n in wanted:
                seen[wanted[n]] = value
            return value

    out = Recorder(gm).run(*args)
    return out, seen
