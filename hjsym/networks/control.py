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


def _recurrent(kind, seed, dtype):
    out = {}
    for n, (layers, bf, bias) in enumerate(RECURRENT_VARIANTS):
        with seeded(seed * 10 + n):
            m = kind(N_INPUT, HIDDEN, num_layers=layers, batch_first=bf, bias=bias, dtype=dtype)
        out[f"{layers} layer{'s' if layers > 1 else ''}, batch_first={bf}, bias={bias}"] = m
    return out


def rnn_references(seed: int = 0, dtype=torch.float64):
    """torch.nn.RNN (tanh) in the four RECURRENT_VARIANTS, input 6, hidden 16."""
    return _recurrent(nn.RNN, seed, dtype)


def gru_references(seed: int = 0, dtype=torch.float64):
    """torch.nn.GRU in the four RECURRENT_VARIANTS."""
    return _recurrent(nn.GRU, seed, dtype)


def lstm_references(seed: int = 0, dtype=torch.float64):
    """torch.nn.LSTM: 1 and 2 layers, batch_first both ways, with and without bias."""
    return _recurrent(nn.LSTM, seed, dtype)


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


def read_control(module: nn.Module, spec, dtype=torch.float64) -> ControlReadout:
    """Read ``module`` as the controlled system of ``spec`` (a copy in ``dtype``, in eval mode)."""
    m = _copy(module, dtype)
    name = spec.name
    torch_kind = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}.get(name)
    if torch_kind is not None:
        return _read_torch_recurrent(_only(m, torch_kind, name), spec, dtype)
    if name == "resnet":
        return _read_resnet(m, spec)
    if hasattr(m, "blocks") and isinstance(getattr(m, "hjsym_controls", lambda: {})(), (list, tuple)):
        return _read_blocks(m, spec)
    return _read_cell(m, spec)


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
    return core


# ----------------------------------------------------------------------------- torch RNN / GRU / LSTM
_GATE_ORDER = {
    "rnn": (("",),),
    "gru": ("r", "z", "n"),
    "lstm": ("i", "f", "g", "o"),
}


def _read_torch_recurrent(m: nn.Module, spec, dtype) -> ControlReadout:
    arch = spec.name
    kind = type(m).__name__
    notes = []
    if m.bidirectional:
        raise ModuleFormError(f"nn.{kind} is bidirectional: its backward direction is a second system running in reverse time",
                              f"use bidirectional=False (or check each direction as its own nn.{kind})")
    if getattr(m, "proj_size", 0):
        raise ModuleFormError(f"nn.{kind} has proj_size={m.proj_size}: a projection of h that the spec does not have",
                              "use proj_size=0")
    if arch == "rnn" and m.nonlinearity != "tanh":
        raise ModuleFormError(f"nn.RNN uses nonlinearity={m.nonlinearity!r}; the 'rnn' spec is the Elman tanh RNN",
                              "use nonlinearity='tanh'")
    if m.dropout and m.num_layers > 1:
        notes.append(f"dropout={m.dropout} between layers is inactive in eval mode (the mode checked); in training mode the "
                     "step is random and is not mapped")
    H, L = m.hidden_size, m.num_layers
    layers, names = [], {}
    for l in range(L):
        pnames = [f"weight_ih_l{l}", f"weight_hh_l{l}"] + ([f"bias_ih_l{l}", f"bias_hh_l{l}"] if m.bias else [])
        params = {n: getattr(m, n).detach() for n in pnames}
        _check_finite(params, f"nn.{kind}")
        layers.append(ControlLayer(params, _recurrent_map(arch, H, m.bias)))
        names[l] = {n: n for n in pnames}
    bf = m.batch_first
    parts = ("c", "h") if arch == "lstm" else ("s",)

    def to_module_layout(x):
        return x.transpose(0, 1) if bf else x

    def pack(s0):
        if arch == "lstm":
            return (torch.stack([s["h"] for s in s0]), torch.stack([s["c"] for s in s0]))
        return torch.stack([s["s"] for s in s0])

    def unpack(state):
        if arch == "lstm":
            hn, cn = state
            return [{"c": cn[l], "h": hn[l]} for l in range(L)]
        return [{"s": state[l]} for l in range(L)]

    def forward(x, s0):
        out, state = m(to_module_layout(x), pack(s0))
        return (out.transpose(0, 1) if bf else out), unpack(state)

    single = []
    for l in range(L):
        c = type(m)(m.input_size if l == 0 else H, H, num_layers=1, bias=m.bias, batch_first=False,
                    **({"nonlinearity": m.nonlinearity} if arch == "rnn" else {}), dtype=dtype)
        with torch.no_grad():
            for n in names[l]:
                getattr(c, n.replace(f"_l{l}", "_l0")).copy_(getattr(m, n))
        single.append(c.eval())

    def stepwise(x, s0):
        """Each layer as a one-layer copy of the same torch class, one step at a time."""
        seq, per_layer = x, []
        for l, c in enumerate(single):
            st = s0[l]
            states = []
            for k in range(seq.shape[0]):
                if arch == "lstm":
                    _, (hh, cc) = c(seq[k:k + 1], (st["h"][None], st["c"][None]))
                    st = {"c": cc[0], "h": hh[0]}
                else:
                    _, hh = c(seq[k:k + 1], st["s"][None])
                    st = {"s": hh[0]}
                states.append(st)
            per_layer.append(states)
            seq = torch.stack([s["h" if arch == "lstm" else "s"] for s in states])
        return per_layer

    desc = f"torch.nn.{kind}(input_size={m.input_size}, hidden_size={H}, num_layers={L}, bias={m.bias}, batch_first={bf})"
    return ControlReadout(m, layers, 1.0, parts, "h" if arch == "lstm" else "s", H, m.input_size, None, desc, forward, stepwise,
                          notes, names)


def _recurrent_map(arch: str, H: int, bias: bool):
    gates = _GATE_ORDER[arch]

    def param_map(p):
        l = next(n for n in p if n.startswith("weight_ih")).rsplit("_l", 1)[1]
        wi, wh = p[f"weight_ih_l{l}"], p[f"weight_hh_l{l}"]
        bi = p.get(f"bias_ih_l{l}")
        bh = p.get(f"bias_hh_l{l}")
        zeros = wi.new_zeros(wi.shape[0])
        bi = zeros if bi is None else bi
        bh = zeros if bh is None else bh
        if arch == "rnn":
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
        return out

    return param_map


# ----------------------------------------------------------------------------- residual MLP
def _block_runs(m: nn.Module, blocks, part: str):
    """``(forward, stepwise)`` of a module applying ``blocks`` in turn to its state (``s = s + h * block(s)``).

    ``stepwise`` is the module's own forward pass with the input of every block recorded (the states s_k).
    """
    depth = len(blocks)

    def forward(x, s0):
        out = m(s0[0][part])
        return None, [{part: out}]

    def stepwise(x, s0):
        seen = []
        hooks = [blk.register_forward_pre_hook(lambda mod, args: seen.append(args[0])) for blk in blocks]
        try:
            out = m(s0[0][part])
        finally:
            for hk in hooks:
                hk.remove()
        if len(seen) != depth:
            raise ModuleFormError(f"{type(m).__name__}.forward called its blocks {len(seen)} times for {depth} blocks",
                                  "apply every block once, in order: s = s + h * block(s)")
        return [[{part: t} for t in seen[1:] + [out]]]

    return forward, stepwise


def _read_resnet(m: nn.Module, spec) -> ControlReadout:
    blocks = getattr(m, "blocks", None)
    if blocks is None:
        raise ModuleFormError(f"{type(m).__name__} has no attribute 'blocks'",
                              "store the residual blocks as self.blocks (an nn.ModuleList applied as s = s + h * block(s))")
    linears_all = []
    for n, blk in enumerate(blocks):
        mods = list(blk.children()) if isinstance(blk, nn.Sequential) else list(blk.modules())[1:]
        bad = [type(c).__name__ for c in mods if not isinstance(c, (nn.Linear, nn.Tanh))]
        if bad:
            raise ModuleFormError(
                f"block {n} of {type(m).__name__} contains {', '.join(sorted(set(bad)))}: the 'resnet' spec is W2 tanh(W1 s + b1) + b2 "
                "(dropout, normalisation or another activation between the layers cannot be mapped)",
                "use blocks nn.Sequential(nn.Linear(d, m), nn.Tanh(), nn.Linear(m, d))",
            )
        lin = [c for c in mods if isinstance(c, nn.Linear)]
        if len(lin) != 2 or sum(isinstance(c, nn.Tanh) for c in mods) != 1:
            raise ModuleFormError(f"block {n} has {len(lin)} nn.Linear and {sum(isinstance(c, nn.Tanh) for c in mods)} nn.Tanh",
                                  "a block is Linear -> Tanh -> Linear")
        if lin[0].in_features != lin[1].out_features:
            raise ModuleFormError(f"block {n} maps width {lin[0].in_features} to {lin[1].out_features}: a projection between blocks",
                                  "keep the width constant across blocks (no projection shortcut)")
        if lin[0].bias is None or lin[1].bias is None:
            raise ModuleFormError(f"block {n} has a Linear without bias", "create the Linear layers with bias=True")
        linears_all.append(lin)
    if getattr(m, "sigma", 0.0):
        raise ModuleFormError(f"{type(m).__name__} injects noise (sigma={m.sigma}): its forward pass is random",
                              "check the deterministic module (sigma=0); the noisy one is checked by the Kolmogorov check")
    h = float(getattr(m, "h", getattr(m, "step_size", 1.0)))
    params = {}
    for n, (l1, l2) in enumerate(linears_all):
        for tag, t in (("W1", l1.weight), ("b1", l1.bias), ("W2", l2.weight), ("b2", l2.bias)):
            params[f"{n}.{tag}"] = t.detach()
    _check_finite(params, type(m).__name__)
    depth = len(linears_all)

    def param_map(p):
        return [{tag: p[f"{n}.{tag}"] for tag in ("W1", "b1", "W2", "b2")} for n in range(depth)]

    layer = ControlLayer(params, param_map)
    width = linears_all[0][0].in_features
    forward, stepwise = _block_runs(m, blocks, "s")
    desc = f"{type(m).__name__}(width={width}, hidden={linears_all[0][0].out_features}, depth={depth}, h={h:g})"
    param_paths = {}
    for n, blk in enumerate(blocks):
        lin = linears_all[n]
        for tag, (li, attr) in (("W1", (0, "weight")), ("b1", (0, "bias")), ("W2", (1, "weight")), ("b2", (1, "bias"))):
            path = next(pn for pn, pp in m.named_parameters() if pp is getattr(lin[li], attr))
            param_paths[f"{n}.{tag}"] = path
    return ControlReadout(m, [layer], h, ("s",), "s", width, None, depth, desc, forward, stepwise, [], {0: param_paths})


# ----------------------------------------------------------------------------- plain-torch cells
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


def _read_blocks(m: nn.Module, spec) -> ControlReadout:
    """A depth-indexed system: ``m.blocks`` applied as ``s = s + h * block(s)`` with ``m.hjsym_controls()`` one dict per block.

    The controls of every step are the spec's (``theta_k``, ``b_k``, ...), read through ``hjsym_controls()``
    (differentiable in the parameters); the step size is the attribute named as the spec's (``h``).
    """
    dyn = spec.dynamics
    parts = tuple(n for n, _ in dyn.state_fields(spec.state))
    if len(parts) != 1 or dyn.inputs:
        raise ModuleFormError(f"{spec.name!r} is not a depth-indexed system with one state and no per-step input",
                              "use a module of the spec's own form")
    params = {n: p.detach() for n, p in m.named_parameters()}
    _check_finite(params, type(m).__name__)
    layer = ControlLayer(params, _controls_map(m))
    blocks = m.blocks
    if len(layer.controls) != len(blocks):
        raise ModuleFormError(f"{type(m).__name__}.hjsym_controls() returns {len(layer.controls)} steps for {len(blocks)} blocks",
                              "return one dict of controls per block, in order")
    want = sorted(c for c in dyn.controls if c != dyn.step_size)
    for k, c in enumerate(layer.controls):
        if sorted(c) != want:
            raise ModuleFormError(f"{type(m).__name__}.hjsym_controls()[{k}] has {sorted(c)}, the spec's controls are {want}",
                                  "return exactly the spec's controls for every block")
    h = float(getattr(m, dyn.step_size, 1.0))
    part = parts[0]
    width = next(v.shape[0] for v in layer.controls[0].values() if isinstance(v, torch.Tensor) and v.dim() >= 1)
    forward, stepwise = _block_runs(m, blocks, part)
    desc = f"{type(m).__name__}(width={width}, depth={len(blocks)}, {dyn.step_size}={h:g})"
    return ControlReadout(m, [layer], h, parts, part, width, None, len(blocks), desc, forward, stepwise, [], {0: {n: n for n in params}})


def _read_cell(m: nn.Module, spec) -> ControlReadout:
    """A plain-torch cell: ``forward(x (B, K, n_x), s0 (B, d)) -> states (B, K, d)``.

    Its controls are ``m.hjsym_controls()`` (differentiable in the parameters) or parameters
    named exactly as the spec's controls; the step size is the attribute of the spec's name (1 by
    default).
    """
    dyn = spec.dynamics
    parts = tuple(n for n, _ in dyn.state_fields(spec.state))
    if len(parts) != 1:
        raise ModuleFormError(f"{spec.name!r} has a state in {len(parts)} parts; generic cells carry one state tensor",
                              "write a reader for it or use a single-part state")
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
    first = next(iter(layer.controls.values()))
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
    del first
    part = parts[0]

    def forward(x, s0):
        states = m(x.transpose(0, 1), s0[0][part])
        states = states.transpose(0, 1)
        return states, [{part: states[-1]}]

    def stepwise(x, s0):
        s, out = s0[0][part], []
        for k in range(x.shape[0]):
            s = m(x[k:k + 1].transpose(0, 1), s)[:, 0]
            out.append({part: s})
        return [out]

    desc = f"{type(m).__name__}(d={width}, n_x={n_input}, {step_name}={h:g})"
    return ControlReadout(m, [layer], h, parts, part, width, n_input, None, desc, forward, stepwise, [], {0: {n: n for n in params}})


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
