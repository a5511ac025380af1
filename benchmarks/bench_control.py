"""Benchmarks of the control family: the generated costate recursion against torch.autograd.

Both compute the same gradients of a loss (checked before timing): torch.autograd's backward
through the real module (timed alone, after an untimed forward that records the graph), and
the generated costate recursion ``adjoint_step`` run backwards over the states and the
intermediates saved by the generated ``forward_step`` (timed alone, after an untimed rollout),
including the parameter gradients of every step. float64, torch on one thread, CPU time, the
median over alternating rounds; one row per size, limit 1.0 (no slower than autograd):

* ``costate_resnet``: residual MLP, width 256, batch 256, depths 16, 64, 256;
* ``costate_lstm``: torch.nn.LSTM (input = hidden), batch 32, (sequence, hidden) = (64, 128),
  (256, 256), (1024, 512).

Run with ``hjsym bench`` (``--quick`` for small sizes).
"""

from __future__ import annotations

import torch

from hjsym._bench import alternating, one_thread

LIMIT = 1.0

__all__ = ["BENCHMARKS"]


def _generated(arch, module, x, s0, loss_seeds):
    """(setup, timed) of the generated route for one module."""
    from hjsym.networks.control import read_control
    from hjsym.codegen.adjoint_sweep import costates, rollout
    from hjsym.codegen.pipeline import load_functions
    from hjsym.spec.registry import get

    spec = get(arch).spec
    fns = load_functions(spec)
    r = read_control(module, spec)
    layer = r.layers[0]
    K = r.n_steps

    def setup():
        return rollout(fns, spec, layer, x, s0, r.step_size, n_steps=K)

    def timed(traj):
        final, running = loss_seeds(traj)
        back = costates(fns, spec, layer, traj, r.step_size, final, running)
        grads = back.grads if layer.shared else back.grads
        if layer.shared:
            grads = layer.pullback(grads)
        return back, grads

    return setup, timed


def _time_pair(a_setup, a_timed, setup, timed, rounds):
    with one_thread():
        t = alternating({"autograd": a_timed, "generated": timed}, rounds=rounds, setup={"autograd": a_setup, "generated": setup})
    return t["autograd"], t["generated"]


def bench_costate_resnet(quick: bool) -> list:
    sizes = [(64, 16, 64)] if quick else [(256, 16, 256), (256, 64, 256), (256, 256, 256)]
    return [_costate_resnet(width, depth, batch, quick) for width, depth, batch in sizes]


def _costate_resnet(width, depth, batch, quick) -> dict:
    from hjsym.networks.control import ResidualMLP, seeded

    with seeded(0):
        m = ResidualMLP(width=width, depth=depth, hidden=width, h=1.0 / depth)
    gen = torch.Generator().manual_seed(1)
    s0 = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    w = torch.randn(batch, width, generator=gen, dtype=torch.float64)
    params = list(m.parameters())

    def a_setup():
        x = s0.clone().requires_grad_(True)
        return x, (w * torch.sin(m(x))).sum()

    def a_timed(state):
        x, phi = state
        return torch.autograd.grad(phi, [x] + params)

    setup, timed = _generated("resnet", m, None, {"s": s0}, lambda tr: ({"s": w * torch.cos(tr.states[-1]["s"])}, None))
    # the same numbers first
    ga = a_timed(a_setup())
    back, grads = timed(setup())
    err = float((ga[0] - back.costates[0]["s"]).abs().max())
    gb = [g for blk in grads for g in (blk["W1"], blk["b1"], blk["W2"], blk["b2"])]
    err = max(err, max(float((a - b).abs().max()) for a, b in zip(ga[1:], gb)))
    t_a, t_b = _time_pair(a_setup, a_timed, setup, timed, 3 if quick else 5)
    ratio = t_b / t_a
    return {"name": f"costate_resnet_depth{depth}", "ratio": ratio, "limit": LIMIT, "passed": ratio <= LIMIT and err < 1e-9,
            "peers": {"autograd": ratio}, "size": f"depth {depth}, width {width}, batch {batch}, float64",
            "autograd_backward_cpu_s": t_a, "generated_costate_cpu_s": t_b, "max_abs_difference": err, "threads": 1}


def bench_costate_lstm(quick: bool) -> list:
    sizes = [(32, 32, 8)] if quick else [(64, 128, 32), (256, 256, 32), (1024, 512, 32)]
    return [_costate_lstm(seq, hidden, batch, quick) for seq, hidden, batch in sizes]


def _costate_lstm(seq, hidden, batch, quick) -> dict:
    from hjsym.networks.control import seeded

    with seeded(0):
        m = torch.nn.LSTM(hidden, hidden, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(seq, batch, hidden, generator=gen, dtype=torch.float64)
    h0 = torch.zeros(batch, hidden, dtype=torch.float64)
    w = torch.randn(seq, batch, hidden, generator=gen, dtype=torch.float64)
    params = list(m.parameters())

    def a_setup():
        out, _ = m(x, (h0[None], h0[None]))
        return (w * torch.sin(out)).sum()

    def a_timed(phi):
        return torch.autograd.grad(phi, params)

    def seeds(tr):
        hs = torch.stack([s["h"] for s in tr.states[1:]])
        d = w * torch.cos(hs)
        running = [None] + [{"h": d[k]} for k in range(seq)]
        zero = torch.zeros_like(h0)
        return {"c": zero, "h": zero}, running

    setup, timed = _generated("lstm", m, x, {"c": h0, "h": h0}, seeds)
    ga = a_timed(a_setup())
    _, gb = timed(setup())
    names = [n for n, _ in m.named_parameters()]
    err = max(float((a - gb[n]).abs().max()) for a, n in zip(ga, names))
    t_a, t_b = _time_pair(a_setup, a_timed, setup, timed, 3 if quick else 5)
    ratio = t_b / t_a
    return {"name": f"costate_lstm_seq{seq}_hidden{hidden}", "ratio": ratio, "limit": LIMIT, "passed": ratio <= LIMIT and err < 1e-9,
            "peers": {"autograd": ratio}, "size": f"sequence {seq}, hidden {hidden}, batch {batch}, float64",
            "autograd_backward_cpu_s": t_a, "generated_costate_cpu_s": t_b, "max_abs_difference": err, "threads": 1}


BENCHMARKS = [bench_costate_resnet, bench_costate_lstm]

