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

Each value is compared within ``k u S``, with ``S`` the size of the terms it went through: every
step adds matrix-vector products whose terms are at most the matrices' largest absolute row or
column sum times the state (the costate), summed over the steps so far (from the end, for the
costate) and over the layers it passed. The negative control moves every parameter of route A's
copy by a relative 1e-6 (``weights``) while route B keeps the original weights: it must fail. The
exact pieces (continuous depth, viscous ResNet, LQR) are in :mod:`hjsym.checks.suites.control_exact`
and are added by the architectures they belong to (``Architecture.checks``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...codegen.adjoint_sweep import costates, layer_inputs, rollout
from ...networks.control import read_control
from ...networks.mamba import refuse_or_read_mamba
from ..engine import Check, Negative, Suite, Values

__all__ = ["SUITE", "Case", "evaluate", "loss_of", "state_scales", "costate_scales", "SEQ_LEN", "BATCH"]

SEQ_LEN, BATCH = 20, 4


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
    if not readout.initial_state:  # the module starts from 0 (it takes no initial state)
        s0 = [{p: torch.zeros_like(t) for p, t in layer.items()} for layer in s0]
    return x, s0


def route_a(case: Case, module_readout, loss: Loss):
    """Autograd through the real module: forward, step by step, and every gradient."""
    r = module_readout
    x = None if case.x is None else case.x.clone().requires_grad_(True)
    s0 = [{p: t.clone().requires_grad_(True) for p, t in layer.items()} for layer in case.s0]
    params = [(n, p) for n, p in r.module.named_parameters()]
    frozen = [p for _, p in params if not p.requires_grad]
    for p in frozen:  # every parameter's gradient is compared, frozen ones too; the flags are restored below
        p.requires_grad_(True)
    try:
        _route_a(case, r, loss, x, s0, params)
    finally:
        for p in frozen:
            p.requires_grad_(False)


def _route_a(case: Case, r, loss: Loss, x, s0, params):
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
    outs = None if outputs is None else top_outputs(r, [[st[r.output] for st in layer] for layer in states])
    phi2 = loss(outs, [st[-1] for st in states])
    flat = [t for layer in states for st in layer for t in st.values()]
    # a readout whose states are views of the module's own tensors differentiates with respect to those (the total derivative)
    originals = getattr(r, "originals", None) or {}
    wrt = [originals.get(id(t), t) for t in flat]
    g2 = torch.autograd.grad(phi2, wrt, allow_unused=True)
    g2 = iter([torch.zeros_like(t) if g is None else g.reshape(t.shape) for t, g in zip(flat, g2)])
    case.costates_a = [[{p: next(g2).detach() for p in st} for st in layer] for layer in states]
    case.states_a = [[{p: t.detach() for p, t in st.items()} for st in layer] for layer in states]


def _flip(t):
    return torch.flip(t, [0])


def top_outputs(r, per_system: list) -> torch.Tensor:
    """``(K, B, D * d)``: the top layer's output part, its directions in time order and concatenated (as torch returns it).

    ``per_system[i]`` is system i's output sequence (a list of ``(B, d)`` over its own steps, or a ``(K, B, d)`` tensor).
    """
    D = r.directions
    top = per_system[len(per_system) - D:]
    seqs = [torch.stack(list(t)) if not isinstance(t, torch.Tensor) else t for t in top]
    return torch.cat([q if d == 0 else _flip(q) for d, q in enumerate(seqs)], -1) if D > 1 else seqs[0]


def route_b(case: Case, fns, spec, loss: Loss):
    """The generated code: rollout, then the costate recursion seeded with grad Phi.

    A bidirectional module has ``directions = 2`` systems per layer: the second runs over the reversed sequence, and
    the layer passes up (and returns) both directions' outputs in time order, concatenated.
    """
    r = case.readout
    D = r.directions
    trajs, seq = [], case.x
    for l in range(len(r.layers) // D):
        outs = []
        for d in range(D):
            i = l * D + d
            s_in = seq if d == 0 or seq is None else _flip(seq)
            tr = rollout(fns, spec, r.layers[i], s_in, case.s0[i], r.step_size, n_steps=r.n_steps)
            trajs.append(tr)
            if r.n_input is not None:
                outs.append(layer_inputs(tr, r.output))
        seq = top_outputs(r, outs) if outs else None
    outputs = seq if r.n_input is not None else None
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

    def seeds(aligned):
        """Per system of a layer, the running seeds ``dPhi/ds_k`` of its output part from ``(K, B, D * d)`` in time order."""
        if aligned is None:
            return [[None] * (K + 1) for _ in range(D)]
        width = aligned.shape[-1] // D
        out = []
        for d in range(D):
            part = aligned[..., d * width:(d + 1) * width]
            part = part if d == 0 else _flip(part)
            out.append([None] + [{r.output: part[k]} for k in range(K)])
        return out

    backs = [None] * len(r.layers)
    running = seeds(d_out)
    for l in range(len(r.layers) // D - 1, -1, -1):
        below = None
        for d in range(D):
            i = l * D + d
            backs[i] = costates(fns, spec, r.layers[i], trajs[i], r.step_size, d_fin[i], running[d], inputs=r.n_input is not None)
            if l > 0:
                g = torch.stack([backs[i].input_grads[k][spec.dynamics.inputs[0]] for k in range(K)])
                g = g if d == 0 else _flip(g)
                below = g if below is None else below + g
        if l > 0:
            running = seeds(below)
    case.backs = backs
    case.param_grads_b = [layer.pullback(b.grads) for layer, b in zip(r.layers, backs)]


def evaluate(label, readout, spec, fns, dtype, seed, route_a_readout=None, loss=None, s0=None) -> Case:
    """Both routes for one network: route B on ``readout``'s weights, route A on ``route_a_readout`` (default: the same).

    ``loss`` (default: the seeded :class:`Loss`) is ``Phi(outputs, finals)``; ``s0`` (default: seeded random states, one
    dict of ``(B, d)`` parts per layer) the initial states, e.g. a training set.
    """
    x, s0_random = _inputs(readout, seed, dtype)
    case = Case(label, readout, x, s0_random if s0 is None else s0)
    loss = loss_of(seed) if loss is None else loss
    route_b(case, fns, spec, loss)
    route_a(case, readout if route_a_readout is None else route_a_readout, loss)
    return case


def _case(ctx, net) -> Case:
    """Both routes for a network of the engine (memoised: every check reads the same run)."""
    return ctx.cached(("control", id(net.readout), id(net.a)),
                      lambda: evaluate(net.label, net.readout, ctx.spec, ctx.fns, ctx.dtype, ctx.seed, net.a))


# ----------------------------------------------------------------------------- scales of the recursions
def _gain(layer) -> float:
    """``max(1, || |M| ||)`` over the layer's matrices (largest absolute row or column sum): how much larger than the
    vector the terms of a matrix-vector product ``M s`` (or ``M^T p``) can be."""
    controls = [layer.controls] if layer.shared else list(layer.controls)
    g = 1.0
    for c in controls:
        for v in c.values():
            if isinstance(v, torch.Tensor) and v.dim() == 2:
                g = max(g, float(v.abs().sum(0).max()), float(v.abs().sum(1).max()))
    return g


def _sizes(states: list[dict]) -> torch.Tensor:
    """``(K + 1, B)``: the largest component of every state (all parts) of a trajectory, per sample."""
    return torch.stack([torch.stack([v.detach().abs().double().amax(-1) for v in st.values()]).amax(0) for st in states])


def _aligned_sum(runs: list, D: int):
    """``(K + 1, B)`` sizes of a layer's systems summed in time order (a reversed direction flipped back; step 0 stays first)."""
    total = None
    for d, run in enumerate(runs):
        run = run if d == 0 else torch.cat([run[:1], _flip(run[1:])])
        total = run if total is None else total + run
    return total


def _own_time(run, d: int):
    return run if d == 0 else torch.cat([run[:1], _flip(run[1:])])


def state_scales(c: Case):
    """Per system, per step k: ``(B, 1)`` sizes of the terms the state s_k went through.

    Every step adds the terms of ``s + h F(s, x)``: matrix-vector products of size up to the gain times ``|s|``
    (and ``|x|``); a layer's input carries the terms of the layer below (both directions of a bidirectional
    one). Summed over the steps so far.
    """
    D = c.readout.directions
    out, below = [], None
    for l in range(len(c.trajs) // D):
        runs = []
        for d in range(D):
            i = l * D + d
            tr = c.trajs[i]
            g = _gain(c.readout.layers[i])
            sizes = _sizes(tr.states)
            step = g * (sizes[:-1] + sizes[1:])
            if tr.inputs is not None:
                step = step + g * tr.inputs.detach().abs().double().amax(-1)
            if below is not None:
                step = step + g * _own_time(below, d)[1:]
            run = torch.cat([sizes[:1], sizes[:1] + torch.cumsum(step, 0)])
            out.append(run[..., None])
            runs.append(run)
        below = _aligned_sum(runs, D)
    return out


def costate_scales(c: Case):
    """Per system, per step k: ``(B, 1)`` sizes of the terms the costate p_k went through (from p_K down to k)."""
    D = c.readout.directions
    out, above = [None] * len(c.backs), None
    for l in range(len(c.backs) // D - 1, -1, -1):
        runs = []
        for d in range(D):
            i = l * D + d
            g = _gain(c.readout.layers[i])
            sizes = _sizes(c.backs[i].costates)
            step = g * (sizes[:-1] + sizes[1:])
            if above is not None:
                step = step + g * _own_time(above, d)[1:]
            run = torch.flip(torch.cumsum(torch.flip(step, [0]), 0), [0])
            run = torch.cat([run + sizes[-1:], sizes[-1:]])
            out[i] = run[..., None]
            runs.append(run)
        above = _aligned_sum(runs, D)
    return out


def _values(a_parts, b_parts, scales):
    return [Values(a, b, s) for a, b, s in zip(a_parts, b_parts, scales)]


def _steps(c: Case) -> int:
    return sum(len(tr.saved) for tr in c.trajs)


# ----------------------------------------------------------------------------- the checks
def _forward(ctx, nets):
    out = []
    for net in nets:
        c = _case(ctx, net)
        scales = state_scales(c)
        if c.outputs_a is not None:
            out += _values([c.outputs_a], [c.outputs_b], [scales[-1][1:].expand_as(c.outputs_a)])
        for l, (fa, fb) in enumerate(zip(c.finals_a, c.finals_b)):
            for p in sorted(fa):
                out += _values([fa[p]], [fb[p]], [scales[l][-1].expand_as(fa[p])])
    return out


def _every_step(route_a, route_b, scales):
    """Values of a per-layer, per-step quantity: ``route_a[l][k-1]`` against ``route_b[l][k]`` for k = 1..K."""

    def evaluate(ctx, nets):
        out = []
        for net in nets:
            c = _case(ctx, net)
            sizes = scales(c)
            for l, layer in enumerate(route_a(c)):
                for k, st in enumerate(layer, 1):
                    for p in sorted(st):
                        out += _values([st[p]], [route_b(c)[l][k][p]], [sizes[l][k].expand_as(st[p])])
        return out

    return evaluate


_hidden_states = _every_step(lambda c: c.states_a, lambda c: [tr.states for tr in c.trajs], state_scales)
_costates = _every_step(lambda c: c.costates_a, lambda c: [b.costates for b in c.backs], costate_scales)


def _initial_state(ctx, nets):
    out = []
    for net in nets:
        if not net.readout.initial_state:
            continue
        c = _case(ctx, net)
        scales = costate_scales(c)
        for l, ga in enumerate(c.initial_grad_a):
            for p in sorted(ga):
                out += _values([ga[p]], [c.backs[l].costates[0][p]], [scales[l][0].expand_as(ga[p])])
    return out


def _parameters(ctx, nets):
    """Parameter gradients are sums over every step: the scale is the number of steps times the sizes compared."""
    out = []
    for net in nets:
        c = _case(ctx, net)
        K = _steps(c)
        for l, ga in enumerate(c.param_grads_a):
            for n in sorted(ga):
                a, b = ga[n], c.param_grads_b[l][n]
                out += _values([a], [b], [K * (a.abs() + b.abs()).double() + K * float(max(a.abs().max(), b.abs().max()))])
    return out


def _inputs_grad(ctx, nets):
    out = []
    name = ctx.spec.dynamics.inputs[0] if ctx.spec.dynamics.inputs else None
    for net in nets:
        c = _case(ctx, net)
        if c.input_grad_a is None:
            continue
        scales = costate_scales(c)
        b, per_step = None, None
        for d in range(c.readout.directions):  # the bottom layer's systems (both directions read the input)
            gb = torch.stack([g[name] for g in c.backs[d].input_grads])
            sc = _gain(c.readout.layers[d]) * scales[d][1:].squeeze(-1)  # (K, B): the costate a step's input gradient reads
            gb, sc = (gb, sc) if d == 0 else (_flip(gb), _flip(sc))
            b = gb if b is None else b + gb
            per_step = sc if per_step is None else per_step + sc
        out += _values([c.input_grad_a], [b], [per_step[..., None].expand_as(b)])
    return out


def kink_set(ctx, nets) -> dict | None:
    """For a piecewise-linear step (relu, max, min, abs): how close route B's trajectories come to a kink.

    The generated ``kinks`` gives the argument of every relu / abs node at each step; derivatives hold off their
    zero set. Returns the number of values, how many sit exactly at a kink, and the smallest distance (None when
    the step has no kink).
    """
    if "kinks" not in ctx.fns:
        return None
    fn = ctx.fns["kinks"]
    dyn = ctx.spec.dynamics
    values, at_kink, smallest = 0, 0, float("inf")
    for net in nets:
        c = _case(ctx, net)
        for l, tr in enumerate(c.trajs):
            layer = c.readout.layers[l]
            for k in range(len(tr.saved)):
                args = {**layer.controls_at(k), **tr.states[k], dyn.step_size: c.readout.step_size}
                if tr.inputs is not None:
                    args[dyn.inputs[0]] = tr.inputs[k]
                out = fn(**{a: args[a] for a in fn.arg_names})
                for t in out if isinstance(out, tuple) else (out,):
                    t = t.detach().abs().double()
                    values += t.numel()
                    at_kink += int((t == 0).sum())
                    smallest = min(smallest, float(t.min())) if t.numel() else smallest
    return {"values": values, "at_kink": at_kink, "min_distance": smallest,
            "convention": "relu'(0) = 0, sign(0) = 0 (torch's relu and abs); derivatives hold almost everywhere"}


def _details(ctx, nets, values):
    out = {"sequence_length": SEQ_LEN, "batch": BATCH}
    kinks = ctx.cached(("kink-set", tuple(id(n.a) for n in nets)), lambda: kink_set(ctx, nets))
    if kinks is not None:
        out["kink_set"] = kinks
    return out


def _has_inputs(ctx) -> bool:
    return bool(ctx.spec.dynamics.inputs)


_WEIGHTS = Negative("weights")
#: The generated programs of the costate recursion (which ones a cell uses: shared weights or weights per step, inputs or not);
#: the formula controls of the backward checks mutate those the derivation has
COSTATE_PROGRAMS = ("costate_step_saved_inputs", "costate_step_saved", "adjoint_step_inputs", "adjoint_step")
_PARAMETERS = ("parameter_gradient_saved", "adjoint_step_inputs", "adjoint_step")
_ROUTE_B = "generated forward_step applied step after step (layer after layer) to the read-out weights"
CHECKS = (
    Check("forward", "generated step rolled out = the module's forward outputs and final states", "step-map:-1",
          "the module's forward pass (outputs and final hidden states)", _ROUTE_B, evaluate=_forward, negative=_WEIGHTS,
          requires=("forward_step",), details=_details),
    Check("hidden_states", "every hidden state $s_k$ (every layer, step and part) = the generated one", "step-map:-1",
          "the module run one step at a time (each layer a one-layer copy of the same class)", "generated forward_step",
          evaluate=_hidden_states, negative=_WEIGHTS, requires=("forward_step",), details=_details),
    Check("costates", r"costate $p_k = \partial\Phi/\partial s_k$ for every hidden state (discrete costate recursion = backprop)", "discrete-costate:1",
          r"torch.autograd gradient of $\Phi$ with respect to each hidden state of the stepwise run",
          r"generated costate recursion (adjoint_step) seeded with $\nabla\Phi$ of the loss on the outputs", evaluate=_costates,
          rounding="autograd", negative=_WEIGHTS, requires=("forward_step",), details=_details, formula=COSTATE_PROGRAMS),
    Check("initial_state_gradient", r"$p_0 = \partial\Phi/\partial s_0$ (gradient with respect to the initial state)", "discrete-costate:1",
          "torch.autograd through the module's forward pass, with respect to $s_0$ ($h_0$, $c_0$)", "generated costate recursion at $k = 0$",
          evaluate=_initial_state, rounding="autograd", negative=_WEIGHTS, requires=("forward_step",), details=_details,
          applies_to=lambda net: net.readout.initial_state, formula=COSTATE_PROGRAMS),
    Check("parameter_gradients", r"$\partial\Phi/\partial\theta = \sum_k \partial_\theta(h\mathcal{H})$ for every parameter tensor of the module", "parameter-gradient:1",
          "torch.autograd through the module's forward pass, every parameter tensor",
          "generated parameter gradients summed over steps, mapped to the module's tensors (chunks, sums of biases)",
          evaluate=_parameters, rounding="autograd", negative=_WEIGHTS, requires=("forward_step",), details=_details,
          formula=_PARAMETERS),
    Check("input_gradient", r"$\partial\Phi/\partial x_k = \partial_x(h\mathcal{H})$ for every input step", "parameter-gradient:-1",
          "torch.autograd through the module's forward pass, with respect to the input sequence",
          "generated input gradients of the bottom layer", evaluate=_inputs_grad, rounding="autograd", negative=_WEIGHTS,
          requires=("forward_step",), when=_has_inputs, details=_details,
          formula=("costate_step_saved_inputs", "adjoint_step_inputs")),
)


def read(ctx, module):
    """torch's recurrent modules, residual stacks (by tracing), plain-torch cells, and a mambapy block's scan."""
    mamba = refuse_or_read_mamba(module, ctx.spec, ctx.dtype)
    return mamba if mamba is not None else read_control(module, ctx.spec, ctx.dtype, ctx.forward_kwargs)


def _notes(ctx, nets):
    notes = [n for net in nets for n in net.readout.notes]
    kinks = ctx.cached(("kink-set", tuple(id(n.a) for n in nets)), lambda: kink_set(ctx, nets))
    if kinks is not None:
        notes.append(f"piecewise-linear step: {kinks['values']} relu/abs arguments along the trajectories, {kinks['at_kink']} at a kink "
                     f"(smallest distance {kinks['min_distance']:.2g}); {kinks['convention']}")
    return notes


SUITE = Suite("control", CHECKS, applies=lambda spec: spec.family == "control", read=read, notes=_notes)
