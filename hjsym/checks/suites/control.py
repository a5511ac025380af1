"""Checks of the control (Pontryagin) family against torch's own modules.

For every network (torch's ``nn.RNN``/``GRU``/``LSTM``, a residual MLP of ``nn.Linear``, a
plain-torch diagonal SSM, or a user's module of that kind) the weights are read out, never
re-initialised, and two routes are compared:

* route A, the real module: its forward pass; the same module run one step (and one layer) at
  a time, so that every hidden state is a tensor; ``torch.autograd`` gradients of a loss ``Phi``
  on its outputs with respect to every hidden state, the initial state, the input and every
  parameter tensor;
* route B, the generated code: ``forward_step`` rolled out from the same initial state, and the
  costate recursion ``adjoint_step`` seeded with ``grad Phi`` (the loss's own gradient with
  respect to the outputs), whose parameter gradients are mapped back to the module's tensors.

The checks ``forward`` and ``hidden_states`` hold to 1e-12, the gradient checks to 1e-10
(float64). ``NEGATIVE_CONTROLS`` runs each on a copy of the module whose parameters moved by
``1000 x tolerance`` while route B keeps the original weights: it must fail. The exact pieces
(continuous depth, viscous ResNet, LQR) are in :mod:`hjsym.checks.suites.control_exact`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..engine import CheckReport, CheckResult, compare
from ...networks.control import DiagonalSSM, ResidualMLP, SelectiveSSM, perturbed_copy, read_control, seeded
from ...codegen.adjoint_sweep import costates, layer_inputs, rollout
from ...codegen.pipeline import load_functions
from ..._errors import InputError
from .control_exact import EXACT

__all__ = [
    "run", "figures", "CHECKS", "NEGATIVE_CONTROLS", "TOLERANCES", "Case", "evaluate", "resnet_references",
    "rnn_references", "gru_references", "lstm_references", "ssm_references", "selective_references", "loss_of",
]

#: (forward, gradient) tolerances by dtype: the issue's 1e-12 and 1e-10 in float64.
TOLERANCES = {torch.float64: (1e-12, 1e-10), torch.float32: (2e-5, 2e-4)}
SEQ_LEN, BATCH = 20, 4
N_INPUT, HIDDEN = 6, 16


# ----------------------------------------------------------------------------- reference modules
def resnet_references(seed: int = 0, dtype=torch.float64):
    """A residual MLP of nn.Linear, depth 32 and width 64 (h = 1), and a smaller one with h = 1/8."""
    with seeded(seed):
        big = ResidualMLP(width=64, depth=32, hidden=64, h=1.0, dtype=dtype)
    with seeded(seed + 1):
        small = ResidualMLP(width=12, depth=8, hidden=20, h=0.125, dtype=dtype)
    return [("depth 32, width 64, h = 1", big), ("depth 8, width 12, hidden 20, h = 1/8", small)]


#: The torch recurrent variants: (num_layers, batch_first, bias).
RECURRENT_VARIANTS = ((1, True, True), (2, False, False), (2, True, True), (1, False, False))


def _recurrent(kind, seed, dtype):
    out = []
    for n, (layers, bf, bias) in enumerate(RECURRENT_VARIANTS):
        with seeded(seed * 10 + n):
            m = kind(N_INPUT, HIDDEN, num_layers=layers, batch_first=bf, bias=bias, dtype=dtype)
        out.append((f"{layers} layer{'s' if layers > 1 else ''}, batch_first={bf}, bias={bias}", m))
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
        return [("d = 16, n_x = 4, dt = 0.05", DiagonalSSM(16, 4, dt=0.05, dtype=dtype))]


def selective_references(seed: int = 0, dtype=torch.float64):
    """A plain-torch selective SSM (input-dependent step), d = 16, n_x = 4."""
    with seeded(seed):
        return [("d = 16, n_x = 4, softplus step", SelectiveSSM(16, 4, dt=0.05, dtype=dtype))]


# ----------------------------------------------------------------------------- the loss
@dataclass
class Loss:
    """``Phi = sum R * sin(outputs) + sum_l sum_parts 0.5 G * final^2 + g . final``, weights seeded."""

    seed: int
    weights: dict = field(default_factory=dict)

    def _w(self, key, shape, dtype):
        if key not in self.weights:
            gen = torch.Generator().manual_seed(self.seed * 1000 + len(self.weights))
            self.weights[key] = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        return self.weights[key]

    def __call__(self, outputs, finals):
        total = 0.0
        if outputs is not None:
            total = total + (self._w("out", outputs.shape, outputs.dtype) * torch.sin(outputs)).sum()
        for l, fin in enumerate(finals):
            for part, t in sorted(fin.items()):
                G, g = self._w(("G", l, part), t.shape, t.dtype), self._w(("g", l, part), t.shape, t.dtype)
                total = total + 0.5 * (G * t * t).sum() + (g * t).sum()
        return total


def loss_of(seed: int) -> Loss:
    return Loss(seed)


# ----------------------------------------------------------------------------- one network, both routes
@dataclass
class Case:
    """Route A and route B for one network (see the module docstring)."""

    label: str
    readout: object
    x: object
    s0: list
    # route A
    outputs_a: object = None
    finals_a: list = None
    states_a: list = None  # per layer, per step k = 1..K, {part: (B, d)}
    costates_a: list = None  # per layer, per step k = 1..K, {part: (B, d)}
    initial_grad_a: list = None  # per layer {part: (B, d)}
    param_grads_a: list = None  # per layer {param name: tensor}
    input_grad_a: object = None
    # route B
    outputs_b: object = None
    finals_b: list = None
    trajs: list = None
    backs: list = None
    param_grads_b: list = None


def _inputs(readout, seed: int, dtype):
    gen = torch.Generator().manual_seed(20_000 + seed)
    K = SEQ_LEN if readout.n_steps is None else readout.n_steps
    x = None if readout.n_input is None else torch.randn(K, BATCH, readout.n_input, generator=gen, dtype=torch.float64).to(dtype)
    s0 = [{p: 0.5 * torch.randn(BATCH, readout.width, generator=gen, dtype=torch.float64).to(dtype) for p in readout.parts}
          for _ in readout.layers]
    return x, s0


def route_a(case: Case, module_readout, loss: Loss):
    """Autograd through the real module: forward, step by step, and every gradient."""
    r = module_readout
    x = None if case.x is None else case.x.clone().requires_grad_(True)
    s0 = [{p: t.clone().requires_grad_(True) for p, t in layer.items()} for layer in case.s0]
    params = [(n, p) for n, p in r.module.named_parameters()]
    for _, p in params:
        p.requires_grad_(True)
    outputs, finals = r.forward(x, s0)
    phi = loss(outputs, finals)
    wrt = [t for layer in s0 for t in layer.values()] + [p for _, p in params] + ([x] if x is not None else [])
    grads = torch.autograd.grad(phi, wrt, allow_unused=True)
    grads = [torch.zeros_like(w) if g is None else g for w, g in zip(wrt, grads)]
    n0 = sum(len(layer) for layer in s0)
    it = iter(grads[:n0])
    case.initial_grad_a = [{p: next(it).detach() for p in layer} for layer in s0]
    by_name = dict(zip([n for n, _ in params], grads[n0:n0 + len(params)]))
    case.param_grads_a = [{n: by_name[path].detach() for n, path in r.param_names[l].items()} for l in range(len(r.layers))]
    case.input_grad_a = grads[-1].detach() if x is not None else None
    case.outputs_a = None if outputs is None else outputs.detach()
    case.finals_a = [{p: t.detach() for p, t in f.items()} for f in finals]
    # step by step: every hidden state is a tensor of the graph
    s0b = [{p: t.clone().requires_grad_(True) for p, t in layer.items()} for layer in case.s0]
    states = r.stepwise(None if case.x is None else case.x, s0b)
    outs = None if outputs is None else torch.stack([st[r.output] for st in states[-1]])
    phi2 = loss(outs, [st[-1] for st in states])
    flat = [t for layer in states for st in layer for t in st.values()]
    g2 = torch.autograd.grad(phi2, flat, allow_unused=True)
    g2 = iter([torch.zeros_like(t) if g is None else g for t, g in zip(flat, g2)])
    case.costates_a = [[{p: next(g2).detach() for p in st} for st in layer] for layer in states]
    case.states_a = [[{p: t.detach() for p, t in st.items()} for st in layer] for layer in states]


def route_b(case: Case, fns, spec, loss: Loss):
    """The generated code: rollout, then the costate recursion seeded with grad Phi."""
    r = case.readout
    trajs, seq = [], case.x
    for l, layer in enumerate(r.layers):
        tr = rollout(fns, spec, layer, seq, case.s0[l], r.step_size, n_steps=r.n_steps)
        trajs.append(tr)
        seq = layer_inputs(tr, r.output) if r.n_input is not None else None
    outputs = layer_inputs(trajs[-1], r.output) if r.n_input is not None else None
    finals = [tr.states[-1] for tr in trajs]
    case.outputs_b, case.finals_b, case.trajs = outputs, finals, trajs
    # grad Phi with respect to what the loss sees (the loss itself, not the network)
    outs = None if outputs is None else outputs.clone().requires_grad_(True)
    fins = [{p: t.clone().requires_grad_(True) for p, t in f.items()} for f in finals]
    phi = loss(outs, fins)
    leaves = ([outs] if outs is not None else []) + [t for f in fins for t in f.values()]
    g = list(torch.autograd.grad(phi, leaves))
    d_out = g.pop(0) if outs is not None else None
    it = iter(g)
    d_fin = [{p: next(it) for p in f} for f in fins]
    K = len(trajs[0].saved)
    running = [None] * (K + 1)
    if d_out is not None:
        for k in range(1, K + 1):
            running[k] = {r.output: d_out[k - 1]}
    backs = [None] * len(r.layers)
    for l in range(len(r.layers) - 1, -1, -1):
        backs[l] = costates(fns, spec, r.layers[l], trajs[l], r.step_size, d_fin[l], running, inputs=r.n_input is not None)
        if l > 0:
            below = backs[l].input_grads
            running = [None] + [{r.output: below[k][spec.dynamics.inputs[0]]} for k in range(K)]
    case.backs = backs
    case.param_grads_b = [layer.pullback(b.grads) for layer, b in zip(r.layers, backs)]


def evaluate(label, module, spec, fns, dtype, seed, perturb: float | None = None) -> Case:
    """Both routes for one module (route A on a perturbed copy when ``perturb`` is given)."""
    readout = read_control(module, spec, dtype)
    x, s0 = _inputs(readout, seed, dtype)
    case = Case(label, readout, x, s0)
    loss = loss_of(seed)
    route_b(case, fns, spec, loss)
    ra = readout if perturb is None else read_control(perturbed_copy(readout.module, perturb, seed), spec, dtype)
    route_a(case, ra, loss)
    return case


# ----------------------------------------------------------------------------- the checks
def _cat(parts):
    return torch.cat([p.reshape(-1) for p in parts]) if parts else torch.zeros(0)


def _details(cases):
    return {"networks": [c.label for c in cases], "sequence_length": SEQ_LEN, "batch": BATCH}


def check_forward(ctx, cases) -> CheckResult:
    a, b = [], []
    for c in cases:
        if c.outputs_a is not None:
            a.append(c.outputs_a)
            b.append(c.outputs_b)
        for fa, fb in zip(c.finals_a, c.finals_b):
            for p in sorted(fa):
                a.append(fa[p])
                b.append(fb[p])
    return compare("forward", "generated step rolled out = the module's forward outputs and final states",
                   _cat(a), _cat(b), ctx.tol_forward, "the module's forward pass (outputs and final hidden states)",
                   "generated forward_step applied step after step (layer after layer) to the read-out weights", _details(cases))


def check_hidden_states(ctx, cases) -> CheckResult:
    a, b = [], []
    for c in cases:
        for l, layer in enumerate(c.states_a):
            for k, st in enumerate(layer, 1):
                for p in sorted(st):
                    a.append(st[p])
                    b.append(c.trajs[l].states[k][p])
    return compare("hidden_states", "every hidden state s_k (every layer, step and part) = the generated one",
                   _cat(a), _cat(b), ctx.tol_forward, "the module run one step at a time (each layer a one-layer copy of the same class)",
                   "generated forward_step", _details(cases))


def check_costates(ctx, cases) -> CheckResult:
    a, b = [], []
    for c in cases:
        for l, layer in enumerate(c.costates_a):
            for k, st in enumerate(layer, 1):
                for p in sorted(st):
                    a.append(st[p])
                    b.append(c.backs[l].costates[k][p])
    return compare("costates", "costate p_k = dPhi/ds_k for every hidden state (discrete costate recursion = backprop)",
                   _cat(a), _cat(b), ctx.tol_grad, "torch.autograd gradient of Phi with respect to each hidden state of the stepwise run",
                   "generated costate recursion (adjoint_step) seeded with grad Phi of the loss on the outputs", _details(cases))


def check_initial_state(ctx, cases) -> CheckResult:
    a, b = [], []
    for c in cases:
        for l, ga in enumerate(c.initial_grad_a):
            for p in sorted(ga):
                a.append(ga[p])
                b.append(c.backs[l].costates[0][p])
    return compare("initial_state_gradient", "p_0 = dPhi/ds_0 (gradient with respect to the initial state)",
                   _cat(a), _cat(b), ctx.tol_grad, "torch.autograd through the module's forward pass, with respect to s_0 (h_0, c_0)",
                   "generated costate recursion at k = 0", _details(cases))


def check_parameters(ctx, cases) -> CheckResult:
    a, b, names = [], [], []
    for c in cases:
        for l, ga in enumerate(c.param_grads_a):
            for n in sorted(ga):
                a.append(ga[n])
                b.append(c.param_grads_b[l][n])
                names.append(f"{c.label}: layer {l} {n}")
    details = _details(cases)
    details["parameter_tensors"] = len(names)
    return compare("parameter_gradients", "dPhi/dtheta for every parameter tensor of the module = sum_k d_theta(h H)",
                   _cat(a), _cat(b), ctx.tol_grad, "torch.autograd through the module's forward pass, every parameter tensor",
                   "generated parameter gradients summed over steps, mapped to the module's tensors (chunks, sums of biases)", details)


def check_inputs(ctx, cases) -> CheckResult:
    a, b = [], []
    for c in cases:
        if c.input_grad_a is None:
            continue
        a.append(c.input_grad_a)
        name = ctx.spec.dynamics.inputs[0]
        b.append(torch.stack([g[name] for g in c.backs[0].input_grads]))
    return compare("input_gradient", "dPhi/dx_k = d_x(h H) for every input step",
                   _cat(a), _cat(b), ctx.tol_grad, "torch.autograd through the module's forward pass, with respect to the input sequence",
                   "generated input gradients of the bottom layer", _details(cases))


BASIC = {
    "forward": check_forward,
    "hidden_states": check_hidden_states,
    "costates": check_costates,
    "initial_state_gradient": check_initial_state,
    "parameter_gradients": check_parameters,
    "input_gradient": check_inputs,
}


#: Every check; the exact pieces apply to some architectures only (see :func:`applicable`).
CHECKS = {**BASIC, **{n: fn for n, (_, fn) in EXACT.items()}}

#: Negative controls: route A on a copy whose parameters moved by ``factor x tolerance``.
NEGATIVE_CONTROLS = {n: ("weights", 1000) for n in BASIC}


@dataclass
class Context:
    spec: object
    fns: dict
    dtype: torch.dtype
    seed: int

    @property
    def tol_forward(self):
        return TOLERANCES[self.dtype][0]

    @property
    def tol_grad(self):
        return TOLERANCES[self.dtype][1]


def applicable(arch) -> list[str]:
    """The checks that apply to ``arch``: the basic ones, and its exact pieces."""
    names = [n for n in BASIC if n != "input_gradient" or arch.spec.dynamics.inputs]
    names += [n for n, (archs, _) in EXACT.items() if arch.name in archs]
    return names


def reference_modules(arch, seed: int = 0, dtype=torch.float64):
    fn = arch.modules_function()
    if fn is None:
        raise InputError(f"architecture {arch.name!r} names no reference modules", "pass module= (or --module FILE.py:NAME)")
    return fn(seed, dtype)


def run(arch, *, module=None, dtype=torch.float64, seed: int = 0, only=None, negative_controls: bool = False,
        progress: bool = False) -> CheckReport:
    """Run the control checks (see the module docstring); returns a :class:`~hjsym.CheckReport`."""
    from tqdm.auto import tqdm

    spec = arch.spec
    fns = load_functions(spec)
    ctx = Context(spec, fns, dtype, seed)
    names = applicable(arch)
    notes = []
    if only is not None:
        wrong = [n for n in only if n not in names]
        if wrong:
            raise InputError(f"check(s) {', '.join(wrong)} do not apply to {arch.name!r}", f"use some of: {', '.join(names)}")
        names = [n for n in names if n in only]
    elif module is not None and any(n in EXACT for n in names):
        names = [n for n in names if n not in EXACT]
        notes.append("the exact pieces (" + ", ".join(n for n, (a, _) in EXACT.items() if arch.name in a)
                     + ") build their own networks and are skipped for a user's module; ask for them with only=")
    nets = reference_modules(arch, seed, dtype) if module is None else [(None, module)]
    basic = [n for n in names if n in BASIC]
    checks = []
    cases = neg_fwd = neg_grad = None
    if basic:
        cases = [evaluate(label, m, spec, fns, dtype, seed) for label, m in tqdm(nets, desc=f"{arch.name}: networks", disable=not progress, leave=False)]
        for c in cases:
            if c.label is None:
                c.label = c.readout.describe
            notes += c.readout.notes
        if negative_controls:
            fwd_delta = NEGATIVE_CONTROLS["forward"][1] * ctx.tol_forward
            grad_delta = NEGATIVE_CONTROLS["costates"][1] * ctx.tol_grad
            neg_fwd = [evaluate(c.label, m, spec, fns, dtype, seed, perturb=fwd_delta) for c, (_, m) in zip(cases, nets)]
            neg_grad = [evaluate(c.label, m, spec, fns, dtype, seed, perturb=grad_delta) for c, (_, m) in zip(cases, nets)]
    for name in tqdm(names, desc=f"checking {arch.name}", disable=not progress, leave=False):
        if name in BASIC:
            result = BASIC[name](ctx, cases)
            if negative_controls:
                neg_cases = neg_fwd if name in ("forward", "hidden_states") else neg_grad
                neg = BASIC[name](ctx, neg_cases)
                delta = (NEGATIVE_CONTROLS[name][1] * (ctx.tol_forward if neg_cases is neg_fwd else ctx.tol_grad))
                result.details["negative_control"] = {"perturbation": f"every weight moved by up to {delta:.0e} (route A only)",
                                                      "max_abs_err": neg.max_abs_err, "passed": neg.passed}
        else:
            result = EXACT[name][1](ctx, arch, negative_controls=negative_controls)
        checks.append(result)
    if not cases:
        network = "see each check's details"
    elif module is not None:
        network = cases[0].readout.describe
    else:
        network = f"{type(cases[0].readout.module).__name__} in {len(cases)} variant{'s' if len(cases) > 1 else ''}: " + "; ".join(c.label for c in cases)
    if dtype != torch.float64:
        notes.append(f"{str(dtype)[6:]}: forward tolerance {ctx.tol_forward:g}, gradient tolerance {ctx.tol_grad:g}")
    return CheckReport(arch.name, str(dtype).replace("torch.", ""), seed, network, checks, list(dict.fromkeys(notes)))


def figures(arch, report: CheckReport, out_dir, *, seed: int = 0):
    """Report figures (see :mod:`hjsym.reports.figures.control`)."""
    from ...reports.figures.control import control_figures

    return control_figures(arch, report, out_dir, seed=seed)
