"""Real torch modules of the control family, and reading them as a spec's controls.

Route A of every control check is a real module: ``torch.nn.RNN``/``GRU``/``LSTM`` as torch
ships them, a residual MLP built from ``nn.Linear``, or a diagonal SSM written in plain torch
(:class:`DiagonalSSM`, :class:`SelectiveSSM`). :func:`read_control` copies a module to the working
dtype and reads its weights as the spec's controls *without re-initialising anything*: a
:class:`ControlReadout` holds, per layer, the module's own parameter tensors, the
(differentiable) map from them to the spec's controls (chunks of ``weight_ih``, ``-exp(A_log)``,
...) and two ways to run the module (its forward pass, and step by step, so that every hidden
state is a tensor autograd can differentiate with respect to). Anything hjsym cannot map
(projections, bidirectional layers, another nonlinearity, extra layers around the core) is a
:class:`~hjsym.ModuleFormError` that names it and says what to pass instead.

Shapes: a sequence ``x`` is ``(K, B, n_x)`` inside hjsym (time first); a state part is ``(B, d)``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .._errors import InputError, ModuleFormError
from .readout import Readout
from .trace import ActivationCall, LinearCall, describe, forward_parameters, pass_through, residual_steps, run_recording, trace
from .training import seeded

N_INPUT, HIDDEN = 6, 16  # the reference recurrent networks' input and hidden sizes

__all__ = [
    "ResidualMLP",
    "DiagonalSSM",
    "SelectiveSSM",
    "ControlLayer",
    "ControlReadout",
    "read_control",
    "resnet_references",
    "rnn_references",
    "gru_references",
    "lstm_references",
    "ssm_references",
    "selective_references",
    "N_INPUT",
    "HIDDEN",
]


# ----------------------------------------------------------------------------- reference modules
class ResidualMLP(nn.Module):
    """A residual MLP: ``s <- s + h (W2 act(W1 s + b1) + b2)`` per block, optionally with noise.

    Each block is ``nn.Sequential(nn.Linear(width, hidden), act, nn.Linear(hidden, width))`` with
    ``act`` ``nn.Tanh`` (default) or ``nn.Identity`` (the linear-Gaussian case). With ``sigma > 0``
    every block adds ``sigma sqrt(h) xi`` (``xi`` standard normal, drawn from ``noise_generator``).

    Shapes: ``s`` is ``(*batch, width)``; the output too.
    """

    def __init__(self, width: int = 64, depth: int = 32, hidden: int | None = None, h: float = 1.0, sigma: float = 0.0,
                 activation: str = "tanh", dtype=torch.float64):
        super().__init__()
        hidden = hidden or width
        act = {"tanh": nn.Tanh, "identity": nn.Identity}[activation]
        self.blocks = nn.ModuleList(
            [nn.Sequential(nn.Linear(width, hidden, dtype=dtype), act(), nn.Linear(hidden, width, dtype=dtype)) for _ in range(depth)]
        )
        self.h = float(h)
        self.sigma = float(sigma)
        self.noise_generator: torch.Generator | None = None

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            s = s + self.h * block(s)
            if self.sigma:
                xi = torch.randn(s.shape, dtype=s.dtype, device=s.device, generator=self.noise_generator)
                s = s + self.sigma * math.sqrt(self.h) * xi
        return s


class DiagonalSSM(nn.Module):
    """S4D-style real diagonal SSM with zero-order hold, in plain torch.

    ``A = -exp(A_log)`` (S4D-real initialisation ``A_n = -(n + 1/2)``), ``dt = exp(log_dt)``,
    ``s_{k+1} = exp(dt A) s_k + (exp(dt A) - 1)/A * (B x_k)``.

    Shapes: ``x`` is ``(B, K, n_x)`` (batch first), ``s0`` ``(B, d)``; returns the states
    ``s_1..s_K`` as ``(B, K, d)``.
    """

    def __init__(self, d_state: int = 16, d_input: int = 4, dt: float = 0.05, dtype=torch.float64):
        super().__init__()
        n = torch.arange(d_state, dtype=dtype)
        self.A_log = nn.Parameter(torch.log(n + 0.5))
        self.B = nn.Parameter(torch.randn(d_state, d_input, dtype=dtype) / math.sqrt(d_input))
        self.log_dt = nn.Parameter(torch.tensor(math.log(dt), dtype=dtype))

    def hjsym_controls(self) -> dict:
        """The spec's controls as differentiable functions of the parameters."""
        return {"A": -torch.exp(self.A_log), "B": self.B, "dt": torch.exp(self.log_dt)}

    def forward(self, x: torch.Tensor, s0: torch.Tensor | None = None) -> torch.Tensor:
        A = -torch.exp(self.A_log)
        Abar = torch.exp(torch.exp(self.log_dt) * A)
        Bbar = ((Abar - 1) / A)[:, None] * self.B
        s = x.new_zeros(x.shape[0], A.shape[0]) if s0 is None else s0
        out = []
        for k in range(x.shape[1]):
            s = Abar * s + x[:, k] @ Bbar.T
            out.append(s)
        return torch.stack(out, dim=1)


class SelectiveSSM(nn.Module):
    """A selective diagonal SSM (Mamba-style step): ``Delta_k = softplus(W_d x_k + b_d)`` per state.

    ``s_{k+1} = exp(Delta A) s_k + (exp(Delta A) - 1)/A * (B x_k)`` with ``A = -exp(A_log)``.

    Shapes: as :class:`DiagonalSSM`.
    """

    def __init__(self, d_state: int = 16, d_input: int = 4, dt: float = 0.05, dtype=torch.float64):
        super().__init__()
        n = torch.arange(d_state, dtype=dtype)
        self.A_log = nn.Parameter(torch.log(n + 0.5))
        self.B = nn.Parameter(torch.randn(d_state, d_input, dtype=dtype) / math.sqrt(d_input))
        self.delta_proj = nn.Linear(d_input, d_state, dtype=dtype)
        with torch.no_grad():  # softplus(b_d) = dt at x = 0 (Mamba's initialisation of the step bias)
            self.delta_proj.bias.fill_(math.log(math.expm1(dt)))
        self.dt = 1.0

    def hjsym_controls(self) -> dict:
        return {"A": -torch.exp(self.A_log), "B": self.B, "W_d": self.delta_proj.weight, "b_d": self.delta_proj.bias}

    def forward(self, x: torch.Tensor, s0: torch.Tensor | None = None) -> torch.Tensor:
        A = -torch.exp(self.A_log)
        s = x.new_zeros(x.shape[0], A.shape[0]) if s0 is None else s0
        out = []
        for k in range(x.shape[1]):
            delta = nn.functional.softplus(self.delta_proj(x[:, k]))
            Abar = torch.exp(delta * A)
            s = Abar * s + (Abar - 1) / A * (x[:, k] @ self.B.T)
            out.append(s)
        return torch.stack(out, dim=1)


# ----------------------------------------------------------------------------- reference networks
def resnet_references(seed: int = 0, dtype=torch.float64):
    """A residual MLP of nn.Linear, depth 32 and width 64 (h = 1), and a smaller one with h = 1/8."""
    with seeded(seed):
        big = ResidualMLP(width=64, depth=32, hidden=64, h=1.0, dtype=dtype)
    with seeded(seed + 1):
        small = ResidualMLP(width=12, depth=8, hidden=20, h=0.125, dtype=dtype)
    return {"depth 32, width 64, h = 1": big, "depth 8, width 12, hidden 20, h = 1/8": small}


#: The torch recurrent variants: (num_layers, batch_first, bias).
RECURRENT_VARIANTS = ((1, True, True), (2, False, False), (2, True, True), (1, False, False))


def _recurrent(kind, seed, dtype, **kwargs):
    out = {}
    for n, (layers, bf, bias) in enumerate(RECURRENT_VARIANTS):
        with seeded(seed * 10 + n):
            m = kind(N_INPUT, HIDDEN, num_layers=layers, batch_first=bf, bias=bias, dtype=dtype, **kwargs)
        out[f"{layers} layer{'s' if layers > 1 else ''}, batch_first={bf}, bias={bias}"] = m
    return out


def rnn_references(seed: int = 0, dtype=torch.float64, nonlinearity: str = "tanh"):
    """torch.nn.RNN (tanh, or relu) in the four RECURRENT_VARIANTS, input 6, hidden 16."""
    return _recurrent(nn.RNN, seed, dtype, nonlinearity=nonlinearity)


def gru_references(seed: int = 0, dtype=torch.float64):
    """torch.nn.GRU in the four RECURRENT_VARIANTS."""
    return _recurrent(nn.GRU, seed, dtype)


def lstm_references(seed: int = 0, dtype=torch.float64, proj_size: int = 0):
    """torch.nn.LSTM (with ``proj_size``, if given): 1 and 2 layers, batch_first both ways, with and without bias."""
    return _recurrent(nn.LSTM, seed, dtype, **({"proj_size": proj_size} if proj_size else {}))


def ssm_references(seed: int = 0, dtype=torch.float64):
    """A plain-torch diagonal SSM (S4D-real, zero-order hold), d = 16, n_x = 4."""
    with seeded(seed):
        return {"d = 16, n_x = 4, dt = 0.05": DiagonalSSM(16, 4, dt=0.05, dtype=dtype)}


def selective_references(seed: int = 0, dtype=torch.float64):
    """A plain-torch selective SSM (input-dependent step), d = 16, n_x = 4."""
    with seeded(seed):
        return {"d = 16, n_x = 4, softplus step": SelectiveSSM(16, 4, dt=0.05, dtype=dtype)}


# ----------------------------------------------------------------------------- readout
@dataclass
class ControlLayer:
    """One controlled system: its parameters, their map to the spec's controls, and the controls.

    ``controls`` is a dict (weights shared by every step) or a list of dicts (one per step, as a
    ResNet's blocks). ``param_map(params)`` recomputes it differentiably from ``params``.
    """

    params: dict
    param_map: object
    controls: object = None

    def __post_init__(self):
        with torch.no_grad():
            self.controls = self.param_map(self.params)

    @property
    def shared(self) -> bool:
        return isinstance(self.controls, dict)

    def controls_at(self, k: int) -> dict:
        return self.controls if self.shared else self.controls[k]

    def pullback(self, grads) -> dict:
        """Gradients of the module's parameters from gradients of the controls (chain rule of the map)."""
        params = {n: p.detach().clone().requires_grad_(True) for n, p in self.params.items()}
        out = self.param_map(params)
        pairs = [(out[n], g) for n, g in grads.items()] if isinstance(out, dict) else [
            (out[k][n], g[n]) for k, g in enumerate(grads) for n in g]
        pairs = [(o, g) for o, g in pairs if o.requires_grad]
        got = torch.autograd.grad([o for o, _ in pairs], list(params.values()), grad_outputs=[g for _, g in pairs], allow_unused=True)
        return {n: (torch.zeros_like(p) if g is None else g) for (n, p), g in zip(params.items(), got)}


@dataclass
class ControlReadout(Readout):
    """A module read as a stack of controlled systems (see the module docstring).

    ``forward(x, s0)`` runs the module itself: returns ``(outputs, finals)`` with ``outputs`` the
    top layer's output part per step ``(K, B, d)`` and ``finals`` one dict per layer of its final
    state parts. ``stepwise(x, s0)`` runs it one step (and one layer) at a time and returns, per
    layer, the list of state dicts ``s_1 .. s_K``. ``x`` is ``(K, B, n_x)`` (``None`` for a ResNet,
    whose "time" is depth) and ``s0`` one dict of ``(B, d)`` tensors per layer.
    """

    module: nn.Module
    layers: list
    step_size: float
    parts: tuple
    output: str
    width: int
    n_input: int | None
    n_steps: int | None
    description: str
    forward: object
    stepwise: object
    notes: list = field(default_factory=list)
    param_names: dict = field(default_factory=dict)  # layer index -> {param name: module attribute path}
    directions: int = 1  # 2 for a bidirectional module: layers are (layer 0 forward, layer 0 reversed, layer 1 forward, ...)
    initial_state: bool = True  # False: the module starts from s = 0 and takes no initial state (Mamba's scan)

    def describe(self) -> str:
        return self.description


def _copy(module: nn.Module, dtype) -> nn.Module:
    if not isinstance(module, nn.Module):
        raise ModuleFormError(f"expected a torch.nn.Module, got {type(module).__name__}", "pass an nn.Module instance")
    return copy.deepcopy(module).to(dtype).eval()


def _check_finite(params: dict, where: str):
    for name, t in params.items():
        if not bool(torch.isfinite(t).all()):
            raise InputError(f"{where}.{name} contains non-finite values", "train or initialise the module to finite weights")


def read_control(module: nn.Module, spec, dtype=torch.float64, forward_kwargs=None) -> ControlReadout:
    """Read ``module`` as the controlled system of ``spec`` (a copy in ``dtype``, in eval mode)."""
    m = _copy(module, dtype)
    name = spec.name
    torch_kind = {"rnn": nn.RNN, "rnn-relu": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM, "lstm-proj": nn.LSTM}.get(name)
    if torch_kind is not None:
        return _read_torch_recurrent(_only(m, torch_kind, name), spec, dtype)
    if name == "resnet" or (not dyn_inputs(spec) and len(spec.dynamics.state_fields(spec.state)) == 1
                            and not hasattr(m, "hjsym_controls")):
        return _read_resnet(m, spec, forward_kwargs)
    if hasattr(m, "blocks") and isinstance(getattr(m, "hjsym_controls", lambda: {})(), (list, tuple)):
        return _read_blocks(m, spec, forward_kwargs)
    return _read_cell(m, spec, forward_kwargs)


def dyn_inputs(spec) -> tuple:
    return tuple(spec.dynamics.inputs)


def _only(m: nn.Module, kind, arch: str) -> nn.Module:
    """The single ``kind`` module inside ``m`` (or ``m`` itself); anything else is refused by name."""
    if isinstance(m, kind):
        return m
    found = [(n, c) for n, c in m.named_modules() if isinstance(c, kind)]
    if len(found) != 1:
        raise ModuleFormError(
            f"a {arch!r} module is one torch.nn.{kind.__name__}; {type(m).__name__} contains {len(found)}",
            f"pass a torch.nn.{kind.__name__} instance (or a module holding exactly one)",
        )
    name, core = found[0]
    extra = [n for n, c in m.named_modules() if n and n != name and not n.startswith(name + ".") and any(True for _ in c.parameters(recurse=False))]
    if extra:
        raise ModuleFormError(
            f"{type(m).__name__} has layers besides its nn.{kind.__name__} {name!r}: {', '.join(extra)} (a projection or head hjsym "
            f"does not map)",
            f"pass the recurrent core itself, e.g. model.{name}, and apply the rest in your loss",
        )
    # route A runs the core: only when the wrapper's forward is exactly a call of it (traced)
    n_in = max(1, len([p for p in forward_parameters(m) if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]))
    gm = trace(m, n_in, leaves=(kind,))
    outside = pass_through(gm, name)
    if outside:
        raise ModuleFormError(
            f"{type(m).__name__}.forward computes {', '.join(dict.fromkeys(describe(gm, n) for n in outside))} besides its "
            f"nn.{kind.__name__} {name!r}: that part lies outside the recurrent core",
            f"pass the recurrent core itself, e.g. model.{name}, and apply the rest in your loss")
    return core


# ----------------------------------------------------------------------------- torch RNN / GRU / LSTM
_GATE_ORDER = {
    "rnn": (("",),),
    "rnn-relu": (("",),),
    "gru": ("r", "z", "n"),
    "lstm": ("i", "f", "g", "o"),
    "lstm-proj": ("i", "f", "g", "o"),
}


def _read_torch_recurrent(m: nn.Module, spec, dtype) -> ControlReadout:
    arch = spec.name
    kind = type(m).__name__
    notes: list = []
    D = 2 if m.bidirectional else 1
    if D == 2:
        notes.append(f"nn.{kind} is bidirectional: each layer is two systems, the second running over the reversed sequence; "
                     "the layer above reads both directions' outputs, concatenated in time order")
    P = getattr(m, "proj_size", 0)
    if P and arch != "lstm-proj":
        raise ModuleFormError(f"nn.{kind} has proj_size={P}: a projection of h that the {arch!r} spec does not have",
                              "check it against its own spec: hjsym check lstm-proj --module ...")
    if arch == "lstm-proj" and not P:
        raise ModuleFormError("nn.LSTM has proj_size=0: no projection for the 'lstm-proj' spec", "check it with hjsym check lstm")
    if P:
        notes.append(f"proj_size={P}: h (P = {P}) is embedded in the cell's dimension ({m.hidden_size}) with zeros, the padded "
                     "weight rows and columns are zero; the padded components agree exactly, at zero")
    wanted = {"rnn": "tanh", "rnn-relu": "relu"}.get(arch)
    if wanted is not None and m.nonlinearity != wanted:
        other = {"tanh": "rnn", "relu": "rnn-relu"}.get(m.nonlinearity)
        raise ModuleFormError(f"nn.RNN uses nonlinearity={m.nonlinearity!r}; the {arch!r} spec is the Elman {wanted} RNN",
                              f"check it against its own spec: hjsym check {other} --module ..." if other else f"use nonlinearity={wanted!r}")
    if m.dropout and m.num_layers > 1:
        notes.append(f"dropout={m.dropout} between layers is inactive in eval mode (the mode checked); in training mode the "
                     "step is random and is not mapped")
    H, L = m.hidden_size, m.num_layers
    layers, names, suffixes = [], {}, [(l, sfx) for l in range(L) for sfx in ("", "_reverse")[:D]]
    for i, (l, sfx) in enumerate(suffixes):
        pnames = [f"weight_ih_l{l}{sfx}", f"weight_hh_l{l}{sfx}"] + ([f"bias_ih_l{l}{sfx}", f"bias_hh_l{l}{sfx}"] if m.bias else [])
        pnames += [f"weight_hr_l{l}{sfx}"] if P else []
        params = {n: getattr(m, n).detach() for n in pnames}
        _check_finite(params, f"nn.{kind}")
        layers.append(ControlLayer(params, _recurrent_map(arch, H, m.bias, P, D if l > 0 else 0)))
        names[i] = {n: n for n in pnames}
    bf = m.batch_first
    lstm = arch in ("lstm", "lstm-proj")
    parts = ("c", "h") if lstm else ("s",)

    def to_module_layout(x):
        return x.transpose(0, 1) if bf else x

    def unpad(t, chunks=1):  # the embedding of the projected state: its first P components of every chunk
        return t if not P else torch.cat([t[..., n * H:n * H + P] for n in range(chunks)], -1)

    def pad(t, chunks=1):
        if not P:
            return t
        zeros = t.new_zeros(*t.shape[:-1], H - P)
        return torch.cat([u for n in range(chunks) for u in (t[..., n * P:(n + 1) * P], zeros)], -1)

    def pack(s0):
        if lstm:
            return (torch.stack([unpad(s["h"]) for s in s0]), torch.stack([s["c"] for s in s0]))
        return torch.stack([s["s"] for s in s0])

    def unpack(state):
        if lstm:
            hn, cn = state
            return [{"c": cn[i], "h": pad(hn[i])} for i in range(L * D)]
        return [{"s": state[i]} for i in range(L * D)]

    def forward(x, s0):
        out, state = m(to_module_layout(x), pack(s0))
        return pad(out.transpose(0, 1) if bf else out, D), unpack(state)

    single = []
    for i, (l, sfx) in enumerate(suffixes):
        c = type(m)(m.input_size if l == 0 else D * (P or H), H, num_layers=1, bias=m.bias, batch_first=False,
                    **({"nonlinearity": m.nonlinearity} if isinstance(m, nn.RNN) else {}),
                    **({"proj_size": P} if P else {}), dtype=dtype)
        with torch.no_grad():
            for n in names[i]:
                getattr(c, n.replace(f"_l{l}{sfx}", "_l0")).copy_(getattr(m, n))
        single.append(c.eval())
    out_part = "h" if lstm else "s"

    def stepwise(x, s0):
        """Each layer and direction as a one-layer, one-direction copy of the same torch class, one step at a time."""
        seq, per_system = x, []
        for l in range(L):
            outs = []
            for d in range(D):
                i = l * D + d
                c, st, states = single[i], s0[i], []
                run = seq if d == 0 else torch.flip(seq, [0])
                run = run if l == 0 else unpad(run, D)  # an upper layer reads the projected states
                for k in range(run.shape[0]):
                    if lstm:
                        _, (hh, cc) = c(run[k:k + 1], (unpad(st["h"])[None], st["c"][None]))
                        st = {"c": cc[0], "h": pad(hh[0])}
                    else:
                        _, hh = c(run[k:k + 1], st["s"][None])
                        st = {"s": hh[0]}
                    states.append(st)
                per_system.append(states)
                o = torch.stack([s[out_part] for s in states])
                outs.append(o if d == 0 else torch.flip(o, [0]))
            seq = torch.cat(outs, -1)
        return per_system

    desc = (f"torch.nn.{kind}(input_size={m.input_size}, hidden_size={H}, num_layers={L}, bias={m.bias}, batch_first={bf}"
            f"{', bidirectional=True' if D == 2 else ''}{f', dropout={m.dropout}' if m.dropout else ''}{f', proj_size={P}' if P else ''})")
    return ControlReadout(m, layers, 1.0, parts, out_part, H, m.input_size, None, desc, forward, stepwise, notes, names, directions=D)


def _pad_columns(w: torch.Tensor, P: int, H: int, chunks: int) -> torch.Tensor:
    """``(rows, chunks * P)`` -> ``(rows, chunks * H)``: each chunk of P columns followed by H - P zero columns."""
    parts = [w[:, n * P:(n + 1) * P] for n in range(chunks)]
    zeros = w.new_zeros(w.shape[0], H - P)
    return torch.cat([t for part in parts for t in (part, zeros)], 1)


def _recurrent_map(arch: str, H: int, bias: bool, P: int = 0, below: int = 0):
    """The map from a torch layer's tensors to the spec's controls; with ``P`` (``proj_size``) the projected state is embedded
    in H components: the recurrent weights' columns (and, above the first layer, the ``below`` directions' input columns) and
    the projection's rows are padded with zeros."""
    gates = _GATE_ORDER[arch]

    def param_map(p):
        l = next(n for n in p if n.startswith("weight_ih")).rsplit("_l", 1)[1]
        wi, wh = p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"]
        if P:
            wh = _pad_columns(wh, P, H, 1)
            wi = _pad_columns(wi, P, H, below) if below else wi
        bi = p.get(f"bias_ih_l{l}")
        bh = p.get(f"bias_hh_l{l}")
        zeros = wi.new_zeros(wi.shape[0])
        bi = zeros if bi is None else bi
        bh = zeros if bh is None else bh
        if arch in ("rnn", "rnn-relu"):
            return {"W": wh, "U": wi, "b": bi + bh}
        out = {}
        for n, g in enumerate(gates):
            rows = slice(n * H, (n + 1) * H)
            if arch == "gru":
                out[f"W_{g}"], out[f"U_{g}"] = wi[rows], wh[rows]
                if g == "n":
                    out["b_in"], out["b_hn"] = bi[rows], bh[rows]
                else:
                    out[f"b_{g}"] = bi[rows] + bh[rows]
            else:
                out[f"W_{g}"], out[f"U_{g}"], out[f"b_{g}"] = wi[rows], wh[rows], bi[rows] + bh[rows]
        if P:
            wr = p[f"weight_hr_l{l}"]
            out["W_r"] = torch.cat([wr, wr.new_zeros(H - P, H)], 0)
        return out

    return param_map


# ----------------------------------------------------------------------------- residual stacks (by tracing)
def spec_activations(spec) -> set[str]:
    """The elementwise activations the spec's field calls (``max(., 0)`` counts as ``relu``)."""
    import ast

    found = set()
    for _, text in spec.dynamics.state_fields(spec.state):
        for node in ast.walk(ast.parse(text, mode="eval")):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("tanh", "relu", "max", "sigmoid"):
                found.add("relu" if node.func.id == "max" else node.func.id)
    return found


def _read_resnet(m: nn.Module, spec, forward_kwargs=None) -> ControlReadout:
    """A residual stack read by tracing its forward: every update ``s <- s + h F(s)``, whatever the containers are called.

    ``F`` is read as ``Linear -> activation -> Linear`` (modules or functions; the activation must be the
    spec's), ``h`` from the graph (a constant such as ``self.dt = 0.3``, or a scalar attribute), and a layer
    used by several steps (tied weights) is one set of parameters used K times. The spec's controls are
    the two linear maps' weights and biases in the order the forward applies them. Anything else in the
    forward (a head, a normalisation, noise) is refused by name.
    """
    dyn = spec.dynamics
    gm = trace(m, 1, forward_kwargs)
    gm._hjsym_name = type(m).__name__
    steps, _ = residual_steps(gm)
    name = type(m).__name__
    if not steps:
        raise ModuleFormError(f"{name}.forward has no residual update s + h F(s)", "apply the blocks as s = s + h * block(s)")
    want = spec_activations(spec)
    ctrl = list(dyn.controls)
    for n, st in enumerate(steps):
        kinds = [layer.kind for layer in st.layers if isinstance(layer, ActivationCall)]
        lins = [layer for layer in st.layers if isinstance(layer, LinearCall)]
        shape = [type(layer).__name__ for layer in st.layers]
        if shape != ["LinearCall", "ActivationCall", "LinearCall"]:
            labels = " -> ".join(layer.label for layer in st.layers)
            raise ModuleFormError(f"{name}: residual step {n} applies {labels}; the {spec.name!r} spec's field is one activation "
                                  "between two linear maps", "use blocks Linear -> activation -> Linear")
        if set(kinds) != want:
            other = {"relu": "a spec with relu(W1 @ s + b1) (see 'Bring your own network')", "tanh": "the 'resnet' spec"}.get(kinds[0], "a spec with it")
            raise ModuleFormError(f"{name}: residual step {n} uses the activation {kinds[0]}; the {spec.name!r} spec's field uses "
                                  f"{', '.join(sorted(want)) or 'none'}", f"check it against {other}")
        if any(layer.bias is None for layer in lins):
            raise ModuleFormError(f"{name}: residual step {n} has a linear map without bias", "create the Linear layers with bias=True")
        if len(ctrl) != 4:
            raise ModuleFormError(f"the {spec.name!r} spec has controls {ctrl}; a residual stack maps two linear layers to four",
                                  "declare the controls as (W1, b1, W2, b2), in the order the forward applies them")
    hs = sorted({st.h for st in steps})
    if len(hs) != 1:
        raise ModuleFormError(f"{name}: the residual steps use different step sizes {', '.join(f'{h:g}' for h in hs)}",
                              "use one step size h for every block")
    h = hs[0]
    params_by_path = dict(m.named_parameters(remove_duplicate=False))
    canonical = {}
    for path, prm in m.named_parameters():  # tied weights: one name per tensor, the first the module gives it
        canonical[id(prm)] = path

    def resolve(path):
        prm = params_by_path.get(path)
        if prm is None:
            raise ModuleFormError(f"{name}: {path} is not a parameter of the module", "store the weights as nn.Parameter")
        return canonical[id(prm)]

    plan = []
    for st in steps:
        l1, _, l2 = st.layers
        plan.append([resolve(l1.weight), resolve(l1.bias), resolve(l2.weight), resolve(l2.bias)])
    used = sorted({p for row in plan for p in row})
    params = {p: dict(m.named_parameters())[p].detach() for p in used}
    _check_finite(params, name)
    depth = len(steps)

    def param_map(p):
        return [dict(zip(ctrl, (p[path] for path in row))) for row in plan]

    layer = ControlLayer(params, param_map)
    width = layer.controls[0][ctrl[0]].shape[1]
    if layer.controls[0][ctrl[2]].shape[0] != width:
        raise ModuleFormError(f"{name}: a block maps width {width} to {layer.controls[0][ctrl[2]].shape[0]}",
                              "keep the width constant across blocks (no projection shortcut)")
    state_nodes = [st.new_state for st in steps]
    fk = dict(forward_kwargs or {})

    def forward(x, s0):
        return None, [{"s": m(s0[0]["s"], **fk)}]

    def stepwise(x, s0):
        """The traced forward run node by node: every state s_k is recorded (the module's own operations)."""
        out, seen = run_recording(gm, state_nodes, s0[0]["s"])
        return [[{"s": t} for t in seen]]

    with torch.no_grad():  # the trace must be the module: same output on a probe
        probe = torch.randn(3, width, generator=torch.Generator().manual_seed(7), dtype=torch.float64).to(next(iter(params.values())).dtype)
        same = torch.equal(gm(probe), m(probe, **fk))
    if not same:
        raise ModuleFormError(f"{name}: the traced computation differs from the module's forward (control flow that depends on values?)",
                              "make forward a fixed sequence of residual steps, or define hjsym_controls()")
    tied = depth - len({tuple(row) for row in plan})
    desc = (f"{name}(width={width}, hidden={layer.controls[0][ctrl[0]].shape[0]}, depth={depth}, h={h:g}"
            f"{f', {len({tuple(row) for row in plan})} distinct blocks (tied weights)' if tied else ''})")
    notes = [f"{name}: {depth} residual steps read by tracing (h = {h:g}){'; tied weights: a block used by several steps is one set of parameters' if tied else ''}"]
    return ControlReadout(m, [layer], h, ("s",), "s", width, None, depth, desc, forward, stepwise, notes, {0: {p: p for p in used}})


# ----------------------------------------------------------------------------- depth-indexed systems (hjsym_controls per block)
def _controls_map(m: nn.Module):
    """The differentiable map from ``m``'s parameters to ``m.hjsym_controls()`` (a dict, or a list of dicts: one per step)."""

    def param_map(p):
        saved = {n: getattr_path(m, n) for n in p}
        try:
            for n, t in p.items():
                set_path(m, n, t)
            out = m.hjsym_controls()
            return [dict(c) for c in out] if isinstance(out, (list, tuple)) else dict(out)
        finally:
            for n, t in saved.items():
                set_path(m, n, t)

    return param_map


def _read_blocks(m: nn.Module, spec, forward_kwargs=None) -> ControlReadout:
    """A depth-indexed system: ``m.blocks`` applied as ``s = s + h * block(s)`` with ``m.hjsym_controls()`` one dict per block.

    The controls of every step are the spec's (``theta_k``, ``b_k``, ...), read through ``hjsym_controls()``
    (differentiable in the parameters); the step size is the attribute named as the spec's (``h``). The
    states s_k are the inputs of the blocks in the module's own forward pass (recorded by hooks).
    """
    dyn = spec.dynamics
    parts = tuple(n for n, _ in dyn.state_fields(spec.state))
    name = type(m).__name__
    if len(parts) != 1 or dyn.inputs:
        raise ModuleFormError(f"{spec.name!r} is not a depth-indexed system with one state and no per-step input",
                              "use a module of the spec's own form")
    params = {n: p.detach() for n, p in m.named_parameters()}
    _check_finite(params, name)
    layer = ControlLayer(params, _controls_map(m))
    blocks = m.blocks
    depth = len(blocks)
    if len(layer.controls) != depth:
        raise ModuleFormError(f"{name}.hjsym_controls() returns {len(layer.controls)} steps for {depth} blocks",
                              "return one dict of controls per block, in order")
    want = sorted(c for c in dyn.controls if c != dyn.step_size)
    for k, c in enumerate(layer.controls):
        if sorted(c) != want:
            raise ModuleFormError(f"{name}.hjsym_controls()[{k}] has {sorted(c)}, the spec's controls are {want}",
                                  "return exactly the spec's controls for every block")
    h = float(getattr(m, dyn.step_size, 1.0))
    part = parts[0]
    width = next(v.shape[0] for v in layer.controls[0].values() if isinstance(v, torch.Tensor) and v.dim() >= 1)
    fk = dict(forward_kwargs or {})

    def forward(x, s0):
        return None, [{part: m(s0[0][part], **fk)}]

    def stepwise(x, s0):
        """The module's own forward pass, with the input of every block recorded (the states s_k)."""
        seen = []
        hooks = [blk.register_forward_pre_hook(lambda mod, args: seen.append(args[0])) for blk in blocks]
        try:
            out = m(s0[0][part], **fk)
        finally:
            for hk in hooks:
                hk.remove()
        if len(seen) != depth:
            raise ModuleFormError(f"{name}.forward called its blocks {len(seen)} times for {depth} blocks",
                                  "apply every block once, in order: s = s + h * block(s)")
        return [[{part: t} for t in seen[1:] + [out]]]

    desc = f"{name}(width={width}, depth={depth}, {dyn.step_size}={h:g})"
    return ControlReadout(m, [layer], h, parts, part, width, None, depth, desc, forward, stepwise, [], {0: {n: n for n in params}})


# ----------------------------------------------------------------------------- plain-torch cells
def _read_cell(m: nn.Module, spec, forward_kwargs=None) -> ControlReadout:
    """A plain-torch cell: ``forward(x (B, K, n_x), s0 (B, d)) -> states (B, K, d)``.

    A state in parts (``Dynamics(field=(("y", ...), ("z", ...)))``) is passed part by part, in the
    spec's order, ``forward(x, y0, z0)``, and returned as a tuple ``(ys, zs)`` (or a dict by part
    name) of ``(B, K, d)`` sequences. Its controls are ``m.hjsym_controls()`` (differentiable in the
    parameters) or parameters named exactly as the spec's controls; the step size is the attribute
    of the spec's name (1 by default). ``forward_kwargs`` are passed to every call.
    """
    dyn = spec.dynamics
    parts = tuple(n for n, _ in dyn.state_fields(spec.state))
    fk = dict(forward_kwargs or {})
    if not dyn.inputs:
        raise ModuleFormError(f"{spec.name!r} has no per-step input: a plain-torch cell is read as forward(x, s0)",
                              "write the network as a residual stack (forward(s) applying s = s + h * F(s) per layer; hjsym reads it "
                              "by tracing) or give the spec an input")
    step_name = dyn.step_size
    ctrl = [c for c in dyn.controls if c != step_name]
    own = dict(m.named_parameters())
    if hasattr(m, "hjsym_controls"):
        params = {n: p.detach() for n, p in own.items()}

        param_map = _controls_map(m)
    else:
        missing = [c for c in ctrl if c not in own]
        if missing:
            raise ModuleFormError(
                f"{type(m).__name__} has no parameters named {', '.join(missing)} (it has {', '.join(own) or 'none'})",
                f"name the parameters as the spec's controls ({', '.join(ctrl)}) or define hjsym_controls() returning them",
            )
        params = {n: own[n].detach() for n in ctrl}

        def param_map(p):
            return dict(p)

    _check_finite(params, type(m).__name__)
    layer = ControlLayer(params, param_map)
    extra = [c for c in layer.controls if c not in dyn.controls]
    lacking = [c for c in dyn.controls if c not in layer.controls and c != step_name]
    if extra or lacking:
        raise ModuleFormError(f"{type(m).__name__}'s controls {sorted(layer.controls)} do not match the spec's {list(dyn.controls)}",
                              "return exactly the spec's controls from hjsym_controls()")
    h = layer.controls.get(step_name) if step_name in layer.controls else getattr(m, step_name, 1.0)
    h = float(h.detach()) if isinstance(h, torch.Tensor) else float(h)
    width = None
    for c in dyn.controls:
        t = layer.controls.get(c)
        if isinstance(t, torch.Tensor) and t.dim() >= 1:
            width = t.shape[0]
            break
    n_input = None
    for c in dyn.controls:
        decl = next((s for s in spec.symbols if s.name == c), None)
        if decl is not None and getattr(decl, "axes", ()) and decl.axes[-1] == "input":
            n_input = layer.controls[c].shape[-1]
    output = dyn.output or parts[0]

    def split(states) -> dict:
        """The module's return value as ``{part: (B, K, d)}``."""
        if isinstance(states, dict):
            missing = [p for p in parts if p not in states]
            if missing:
                raise ModuleFormError(f"{type(m).__name__}.forward returned a dict without {', '.join(missing)}",
                                      f"return every part of the state: {', '.join(parts)}")
            return {p: states[p] for p in parts}
        if isinstance(states, torch.Tensor):
            states = (states,)
        if not isinstance(states, (tuple, list)) or len(states) != len(parts) or not all(isinstance(t, torch.Tensor) for t in states):
            raise ModuleFormError(
                f"{type(m).__name__}.forward returned {type(states).__name__}{f' of {len(states)}' if isinstance(states, (tuple, list)) else ''}; "
                f"the state has {len(parts)} part(s) {', '.join(parts)}",
                "return the state sequences (B, K, d), one per part in the spec's order (a tuple, or a dict by part name)")
        return dict(zip(parts, states))

    def call(x_bf, state: dict) -> dict:
        return split(m(x_bf, *[state[p] for p in parts], **fk))

    def forward(x, s0):
        seqs = {p: t.transpose(0, 1) for p, t in call(x.transpose(0, 1), s0[0]).items()}
        return seqs[output], [{p: t[-1] for p, t in seqs.items()}]

    def stepwise(x, s0):
        st, out = dict(s0[0]), []
        for k in range(x.shape[0]):
            st = {p: t[:, 0] for p, t in call(x[k:k + 1].transpose(0, 1), st).items()}
            out.append(st)
        return [out]

    desc = f"{type(m).__name__}(d={width}, n_x={n_input}, {step_name}={h:g}{', state ' + ' + '.join(parts) if len(parts) > 1 else ''})"
    return ControlReadout(m, [layer], h, parts, output, width, n_input, None, desc, forward, stepwise, [], {0: {n: n for n in params}})


def getattr_path(m: nn.Module, path: str):
    obj = m
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def set_path(m: nn.Module, path: str, value):
    """Set a parameter by dotted path (used to evaluate a differentiable parameter map)."""
    *head, last = path.split(".")
    obj = m
    for part in head:
        obj = getattr(obj, part)
    if isinstance(obj._parameters.get(last), nn.Parameter) or last in obj._parameters:
        obj._parameters[last] = value
    else:
        setattr(obj, last, value)
