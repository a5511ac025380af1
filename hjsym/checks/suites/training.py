"""Training as optimal control, checked on networks trained to convergence (the ``training-hjb`` architecture).

The networks are depth-indexed control systems ``s_{k+1} = s_k + h F(s_k, theta_k)`` whose module states
its training problem (``hjsym_training()``: inputs, targets, penalty rho) and was trained on the cost
``J = sum_n |s_K^n - y^n|^2/2 + (rho/2) h sum_k |theta_k|^2``. Route A is the trained module: its
controls, its forward pass and torch.autograd through it; route B is generated from the derivation
(:mod:`hjsym.derivation.training`), evaluated with ``ctx.call`` on the weights read out of it:

* ``bias_riccati``: the optimal bias of every step from the Riccati recursion and its feedback (run
  backwards from the terminal loss, then forwards from the batch mean, with the generated
  ``step``) = the bias the training converged to;
* ``value_function``: ``V_0`` of the recursion (plus the part of the loss the bias cannot move, and
  the penalty on the weights) = the trained cost ``J``, from the module's forward pass;
* ``pmp_costate``: the costate of the training loss, from the generated recursion seeded with
  ``p_K = s_K - y``, = ``dJ/ds_k`` by torch.autograd through the trained module;
* ``pmp_stationarity``: every control is the minimiser of the augmented Hamiltonian,
  ``rho theta_k = -sum_n d_theta(p_{k+1}^n . F(s_k^n, theta))``, with generated states and costates.

Tolerances are ``k u S``: ``S`` the generated magnitudes of the terms (the Riccati recursion's summed
over the steps it went through and multiplied by the largest condition number of its solves). An
optimiser can bring the gradient ``h (sum_n p + rho b)`` down to its own rounding ``u S_grad`` and no
further, which leaves the biases within ``u |S_grad| / lambda_min(Hess J)`` of the exact minimum (the
cost is quadratic in them): ``bias_riccati`` adds ``|S_grad| / lambda_min`` to its scale. The
network's actual certificate ``|grad J| / lambda_min`` is recorded in the details; a network that has
not converged fails. Each check has a negative control: the module's parameters moved by one part
in a million (``weights``), or its output shifted (``offset``, for the cost).
"""

from __future__ import annotations

import torch

from ..._errors import ModuleFormError
from ..engine import Check, Negative, Network, Values
from .control import costate_scales, evaluate, state_scales

__all__ = ["TRAINING_CHECKS", "training_problem", "riccati_solution", "certificate", "pmp_points"]


def training_problem(readout) -> dict:
    """``{"inputs", "targets", "penalty"}`` of the module read by ``readout`` (its ``hjsym_training()``)."""
    m = readout.module
    if not hasattr(m, "hjsym_training"):
        raise ModuleFormError(f"{type(m).__name__} does not state its training problem",
                              "define hjsym_training() returning {'inputs', 'targets', 'penalty'} (see hjsym.architectures.training_hjb)")
    t = m.hjsym_training()
    return {"inputs": t["inputs"].detach(), "targets": t["targets"].detach(), "penalty": float(t["penalty"])}


def _controls(readout, name):
    return [c[name] for c in readout.layers[0].controls]


def _bias_name(spec) -> str:
    """The control over the state dimension that enters the field additively (the derivation's bias)."""
    axes = {s.name: tuple(getattr(s, "axes", ())) for s in spec.symbols}
    return next(c for c in spec.dynamics.controls if axes.get(c) == ("dim",))


def _weights(readout, spec, k: int) -> dict:
    """The controls of step ``k`` other than the bias (the weights), by name."""
    bias = _bias_name(spec)
    return {n: t for n, t in readout.layers[0].controls[k].items() if n != bias}


def riccati_solution(ctx, readout) -> dict:
    """The Riccati recursion of the bias problem on ``readout``'s weights, by the generated functions.

    Backwards from ``P_K = N I``, ``q_K = N y_bar``, ``c_K = N |y_bar|^2/2`` (the loss of the batch mean), then
    forwards from the mean input with the optimal feedback. Returns the biases ``b`` ``(K, d)``, the
    value ``V0`` of the mean problem, their scales, the largest condition number of the solves and
    the means.
    """
    prob = training_problem(readout)
    X, Y, rho = prob["inputs"].to(ctx.dtype), prob["targets"].to(ctx.dtype), prob["penalty"]
    h, n_steps = readout.step_size, len(readout.layers[0].controls)
    N, d = X.shape
    xbar, ybar = X.mean(0), Y.mean(0)
    eye = torch.eye(d, dtype=ctx.dtype)
    P, q, c = N * eye, N * ybar, 0.5 * N * (ybar @ ybar)
    Ms, qs, kappa, run = [None] * n_steps, [None] * n_steps, 1.0, [0.0] * (n_steps + 1)
    for k in range(n_steps - 1, -1, -1):
        M = ctx.call("bellman_curvature", P=P, rho=rho, h=h)
        args = {"Mb": M, "q": q, "c": c, **_weights(readout, ctx.spec, k), "rho": rho, "h": h}
        Ms[k], qs[k] = M, q
        kappa = max(kappa, float(torch.linalg.cond(M)))
        # every backward step adds the rounding of its terms (the largest entry of their magnitudes)
        run[k] = run[k + 1] + sum(float(ctx.magnitude(f, args).max()) for f in ("riccati_step", "riccati_linear", "riccati_constant"))
        P, q, c = ctx.call("riccati_step", args), ctx.call("riccati_linear", args), ctx.call("riccati_constant", args)
    value = ctx.call("quadratic_value", s=xbar, P=P, q=q, c=c)
    value_scale = float(ctx.magnitude("quadratic_value", s=xbar, P=P, q=q, c=c)) + run[0]
    m, bs, scales = xbar, [], []
    for k in range(n_steps):
        weights = _weights(readout, ctx.spec, k)
        args = {"s": m, "Mb": Ms[k], "q": qs[k], **weights, "rho": rho, "h": h}
        b = ctx.call("optimal_bias", args)
        scales.append(kappa * (ctx.magnitude("optimal_bias", args) + run[k]))
        bs.append(b)
        m = ctx.call("step", s=m, **weights, **{_bias_name(ctx.spec): b}, h=h)
    return {"b": torch.stack(bs), "b_scale": torch.stack(scales), "V0": value, "V0_scale": kappa * value_scale, "condition": kappa,
            "x_bar": xbar, "y_bar": ybar, "N": N}


def certificate(readout) -> dict:
    """How far the module as trained can be from the exact minimum of its cost: ``|grad J| / lambda_min(Hess J)``.

    ``J`` is the training cost through the module's forward pass and the controls read out of it, as a
    function of its trainable parameters (the controls themselves for ``nn.Linear`` blocks); for a cost
    quadratic in them (the bias with the weights held) the bound is exact. Also returns the cost's
    excess ``|grad J|^2 / (2 lambda_min)``.
    """
    from torch.func import functional_call, grad, hessian

    m, layer = readout.module, readout.layers[0]
    prob = training_problem(readout)
    X, Y, rho, h = prob["inputs"], prob["targets"], prob["penalty"], readout.step_size
    named = {n: p.detach() for n, p in m.named_parameters()}
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    sizes = [named[n].numel() for n in trainable]

    def cost(v):
        params = dict(named)
        params.update({n: t.reshape(named[n].shape) for n, t in zip(trainable, torch.split(v, sizes))})
        out = functional_call(m, params, (X,))
        controls = layer.param_map({n: params[n] for n in layer.params})
        penalty = sum((t ** 2).sum() for c in controls for t in c.values())
        return 0.5 * ((out - Y) ** 2).sum() + 0.5 * rho * h * penalty

    v = torch.cat([named[n].reshape(-1) for n in trainable])
    g = float(grad(cost)(v).norm())
    lam = float(torch.linalg.eigvalsh(hessian(cost)(v)).min())
    if lam <= 0:
        return {"gradient_norm": g, "hessian_min_eigenvalue": lam, "distance": float("inf"), "cost_excess": float("inf")}
    return {"gradient_norm": g, "hessian_min_eigenvalue": lam, "distance": g / lam, "cost_excess": g * g / (2 * lam)}


class _TrainingLoss:
    """``Phi(outputs, finals) = sum_n |s_K^n - y^n|^2 / 2`` on the final state (the control suite's loss interface)."""

    def __init__(self, targets):
        self.targets = targets

    def __call__(self, outputs, finals):
        (fin,) = finals
        (s,) = fin.values()
        return 0.5 * ((s - self.targets.to(s.dtype)) ** 2).sum()


def _case(ctx, net):
    """Both routes of the control suite with the training loss, from the training inputs (memoised per network)."""

    def make():
        prob = training_problem(net.readout)
        part = net.readout.parts[0]
        return evaluate(net.label, net.readout, ctx.spec, ctx.fns, ctx.dtype, ctx.seed, net.a, loss=_TrainingLoss(prob["targets"]),
                        s0=[{part: prob["inputs"].to(ctx.dtype)}])

    return ctx.cached(("training", id(net.readout), id(net.a)), make)


# ----------------------------------------------------------------------------- the checks
def _solution(ctx, net):
    """The Riccati solution and the optimality certificate of a network (memoised: two checks read them)."""
    return (ctx.cached(("riccati", id(net.readout)), lambda: riccati_solution(ctx, net.readout)),
            ctx.cached(("certificate", id(net.readout)), lambda: certificate(net.readout)))


def _bias_riccati(ctx, nets):
    out = []
    for net in nets:
        sol, cert = _solution(ctx, net)
        bias = _bias_name(ctx.spec)
        trained = torch.stack(_controls(net.a, bias))
        # an optimiser stops where the gradient h (sum_n p + rho b) is at the level of its own rounding, u S_grad: the
        # biases it returns are then within u |S_grad| / lambda_min of the exact minimum (the cost is quadratic in them)
        c = _case(ctx, net)
        rho, h = training_problem(net.readout)["penalty"], net.readout.step_size
        p_sizes, part = costate_scales(c)[0], net.readout.parts[0]
        grad_terms = torch.stack([h * ((c.backs[0].costates[k + 1][part].abs() + p_sizes[k + 1]).sum(0) + rho * sol["b"][k].abs())
                                  for k in range(len(sol["b"]))])
        reach = float(grad_terms.double().norm()) / cert["hessian_min_eigenvalue"]
        out.append(Values(trained, sol["b"], sol["b_scale"] + reach,
                          info={"network": net.label, "condition_of_M": sol["condition"], "optimiser_reach_scale": reach,
                                "certificate": cert}))
    return out


def _value_function(ctx, nets):
    out = []
    for net in nets:
        sol, cert = _solution(ctx, net)
        prob = training_problem(net.readout)
        X, Y, rho, h = prob["inputs"].to(ctx.dtype), prob["targets"].to(ctx.dtype), prob["penalty"], net.readout.step_size
        bias = _bias_name(ctx.spec)
        steps = range(len(net.readout.layers[0].controls))
        # route B: the bias problem's value, the deviations from the mean (which the bias does not move), the weights' penalty
        dev, dev_y = X - sol["x_bar"], Y - sol["y_bar"]
        zero = {bias: torch.zeros(X.shape[1], dtype=ctx.dtype)}
        for k in steps:
            dev = ctx.call("step", s=dev, **_weights(net.readout, ctx.spec, k), **zero, h=h)
        rest = ctx.call("terminal_loss", s=dev, y=dev_y).sum()
        rest_scale = ctx.magnitude("terminal_loss", s=dev, y=dev_y).sum()
        pen_args = [{**_weights(net.readout, ctx.spec, k), **zero, "rho": rho, "h": h} for k in steps]
        pen = sum(ctx.call("running_cost", a) for a in pen_args)
        pen_scale = sum(ctx.magnitude("running_cost", a) for a in pen_args)
        value_b = sol["V0"] + rest + pen
        # route A: the trained cost, by the module's forward pass and its controls
        with torch.no_grad():
            _, finals = net.a.forward(None, [{net.a.parts[0]: X}])
            sK = next(iter(finals[0].values()))
            penalty = 0.5 * rho * h * sum((t ** 2).sum() for c in net.a.layers[0].controls for t in c.values())
            value_a = 0.5 * ((sK - Y) ** 2).sum() + penalty
        s_scale = state_scales(_case(ctx, net))[0][-1]  # (N, 1): the terms the final states went through
        scale_a = (0.5 * (sK.abs() + Y.abs()) ** 2).sum() + ((sK - Y).abs() * s_scale).sum() + 2 * penalty
        # the optimiser's reach costs the cost only to second order (u^2): the scale is that of the terms
        scale = scale_a + sol["V0_scale"] + rest_scale + pen_scale
        out.append(Values(value_a.reshape(1), value_b.reshape(1), scale.reshape(1),
                          info={"network": net.label, "J_trained": float(value_a), "V0_plus_rest": float(value_b),
                                "V0_mean_problem": float(sol["V0"]), "deviations": float(rest), "weight_penalty": float(pen),
                                "certificate": cert}))
    return out


def _pmp_costate(ctx, nets):
    out = []
    for net in nets:
        c = _case(ctx, net)
        sizes = costate_scales(c)[0]
        for k, st in enumerate(c.costates_a[0], 1):
            for p in sorted(st):
                out.append(Values(st[p], c.backs[0].costates[k][p], sizes[k].expand_as(st[p])))
        for p in sorted(c.initial_grad_a[0]):
            out.append(Values(c.initial_grad_a[0][p], c.backs[0].costates[0][p], sizes[0].expand_as(c.initial_grad_a[0][p])))
    return out


def _pmp_stationarity(ctx, nets):
    out = []
    for net in nets:
        c = _case(ctx, net)
        rho = training_problem(net.readout)["penalty"]
        part = net.readout.parts[0]
        costate = ctx.spec.costate
        s_sizes, p_sizes = state_scales(c)[0], costate_scales(c)[0]
        trained = net.a.layers[0].controls
        # only the controls training moved (computed from trainable parameters) are at a stationary point
        moved = [{n: bool(t.requires_grad) for n, t in step.items()} for step in net.readout.module.hjsym_controls()]
        for k in range(len(c.trajs[0].saved)):
            s, p = c.trajs[0].states[k][part], c.backs[0].costates[k + 1][part]
            star = dict(zip(ctx.fns["pmp_controls"].outputs, ctx.call("pmp_controls", {part: s, costate: p, "rho": rho})))
            ss, ps = s_sizes[k], p_sizes[k + 1]  # (B, 1)
            for name in sorted(n for n in trained[k] if moved[k][n]):
                b = star[f"{name}_star"]
                a = trained[k][name]
                if b.dim() == 2:  # a weight: sum_n p_k s_l
                    terms = torch.einsum("nk,nl->kl", p.abs() + ps, s.abs() + ss)
                else:  # a bias: sum_n p_k
                    terms = (p.abs() + ps).sum(0)
                out.append(Values(a, b, terms.double() / rho, info={"network": net.label} if k == 0 and name == "b" else {}))
    return out


def pmp_points(ctx, readout) -> tuple[list, list]:
    """Every trained control entry (route A) and its Pontryagin stationary point (route B), as two flat lists."""
    a, b = [], []
    for v in _pmp_stationarity(ctx, [Network("figure", readout)]):
        a += v.a.reshape(-1).tolist()
        b += v.b.reshape(-1).tolist()
    return a, b


def _details(ctx, nets, values):
    return {"networks": [n.label for n in nets]}


TRAINING_CHECKS = (
    Check("bias_riccati", "optimal bias of every step from the Riccati recursion = the bias training converged to", "bias-feedback:4",
          "the trained module's biases (full-batch Adam, then Newton to convergence)",
          "generated bellman_curvature, riccati_step/_linear/_constant backwards from the terminal loss, then optimal_bias and step "
          "forwards from the batch mean", evaluate=_bias_riccati, negative=Negative("weights"),
          requires=("riccati_step", "optimal_bias", "step")),
    Check("value_function", "value V_0 of the recursion (+ the deviations' loss and the weights' penalty) = the trained cost J",
          "bias-riccati:5", "J by the trained module's forward pass on its training set, plus the penalty on its controls",
          "generated quadratic_value at the mean input, terminal_loss of the deviations rolled out by step, running_cost of the weights",
          evaluate=_value_function, negative=Negative("offset"), requires=("quadratic_value", "terminal_loss", "running_cost")),
    Check("pmp_costate", "Pontryagin at the optimum: costate p_k of the training loss = dJ/ds_k", "discrete-costate:1",
          "torch.autograd of the training loss through the trained module run block by block, every sample and step",
          "generated costate recursion (adjoint_step) seeded with p_K = s_K - y", evaluate=_pmp_costate, rounding="autograd",
          negative=Negative("weights"), requires=("forward_step", "terminal_costate")),
    Check("pmp_stationarity", "Pontryagin at the optimum: every control minimises the augmented Hamiltonian (rho theta_k = -sum_n p s^T)",
          "training-pmp:2", "the trained module's controls theta_k, b_k",
          "generated pmp_controls on the generated states s_k and costates p_(k+1) of the training loss", evaluate=_pmp_stationarity,
          rounding="autograd", negative=Negative("weights"), requires=("pmp_controls", "forward_step"), details=_details),
)
