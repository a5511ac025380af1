"""The method of successive approximations (MSA) and its extended form (E-MSA) as a torch optimiser.

Li, Chen, Tai & E (JMLR 2018) train a network as the control problem it is: with the states
``s_{k+1} = f_k(s_k, theta_k) = s_k + h F(s_k, theta_k)`` and the costates ``p_k = d_s(p_{k+1} . f_k)``
(backprop), Pontryagin's principle says every ``theta_k`` extremises the Hamiltonian
``sum_n p_{k+1}^n . f_k(s_k^n, theta)``. One E-MSA iteration on a batch:

1. **forward**: the states of every block by hjsym's generated ``forward_step``
   (:func:`hjsym.codegen.adjoint_sweep.rollout`);
2. **backward**: the costates by the generated ``adjoint_step``, seeded with the gradient of the
   terminal loss (:func:`hjsym.codegen.adjoint_sweep.costates`);
3. **layer-wise**: each block's ``theta_k`` minimises the augmented Hamiltonian (hjsym's sign: the
   costate is the gradient of the loss, so the Hamiltonian is minimised)
   ``(1/B) sum_n [ lam^n . f_k(s_k^n, theta) + (rho/2) |s_{k+1}^n - f_k(s_k^n, theta)|^2
   + (rho/2) |lam_k^n - d_s(lam_{k+1}^n . f_k)(s_k^n, theta)|^2 ] + (lam_wd/2) |theta|^2``, with the per-sample
   costates ``lam = B p`` and every term a generated function (``hamiltonian``, ``step``,
   ``costate_step``), minimised from ``theta_k`` by a few L-BFGS iterations (autograd through the
   generated code). The two penalties keep the new controls where the old states and costates
   still describe the network; ``rho -> infinity`` turns one step into the metric gradient step
   ``-(1/rho) G_k^{-1} dJ/dtheta_k``, ``G_k`` the Gauss-Newton matrix of the two penalties.

A linear classifier head after the blocks (``head``, an ``nn.Linear``) is one more layer of the same
kind (``f(s) = C s + c``), handled in plain torch: it is not a step of the control family's spec.
"""

from __future__ import annotations

import torch
from torch import nn

from ..codegen.adjoint_sweep import costates, rollout
from ..codegen.pipeline import load_functions
from ..spec.registry import get
from .control import ResidualMLP, read_control

__all__ = ["EMSA", "augmented_hamiltonian"]

_CONTROLS = ("W1", "b1", "W2", "b2")


def _call(fn, values: dict, checked: bool = True):
    """A generated function with the arguments it names (``values`` may hold more); ``checked=False``: without validation."""
    return (fn if checked else fn.unchecked)(**{a: values[a] for a in fn.arg_names})


def augmented_hamiltonian(fns, s, lam_next, s_next, lam, theta: dict, h: float, rho: float, checked: bool = True):
    """The E-MSA objective of one block (mean over the batch), every term a generated function.

    ``s``, ``s_next``, ``lam``, ``lam_next``: ``(B, d)`` states and per-sample costates of the current
    iterate around the block; ``theta``: the block's controls (``W1, b1, W2, b2``) as tensors. Inner
    loops that validated the arguments once pass ``checked=False`` (``h`` must then be a tensor).
    """
    values = {**theta, "h": h, "s": s, "p": lam_next}
    ham = _call(fns["hamiltonian"], values, checked)  # lam . F per sample; lam . f = lam . s + h lam . F
    f = _call(fns["step"], values, checked)
    g = _call(fns["costate_step"], values, checked)
    return (h * ham + 0.5 * rho * ((s_next - f) ** 2).sum(-1) + 0.5 * rho * ((lam - g) ** 2).sum(-1)).mean()


class EMSA(torch.optim.Optimizer):
    """Extended MSA for a :class:`~hjsym.networks.control.ResidualMLP` (and an optional linear head).

    ``step(inputs, terminal_loss)`` runs one iteration on a batch: ``inputs`` ``(B, d)`` enter the first
    block, ``terminal_loss(s_K)`` is the mean loss of the batch on the last state (through the head, if
    one is given, it receives the head's output). Like ``torch.optim.LBFGS`` the step needs more than
    gradients: the batch itself, because the forward and backward sweeps are hjsym's generated
    programs rather than autograd. ``rho`` is the penalty (large: small, gradient-like steps),
    ``inner_steps`` the L-BFGS iterations per layer, ``weight_decay`` an L2 running cost.
    """

    def __init__(self, module: ResidualMLP, head: nn.Linear | None = None, rho: float = 1.0, inner_steps: int = 5,
                 weight_decay: float = 0.0):
        params = list(module.parameters()) + (list(head.parameters()) if head is not None else [])
        super().__init__(params, {"rho": float(rho), "inner_steps": int(inner_steps), "weight_decay": float(weight_decay)})
        self.module, self.head = module, head
        self.spec = get("resnet").spec
        self.fns = load_functions(self.spec)

    def _minimise(self, objective, tensors, group):
        """A few L-BFGS iterations on ``objective()`` over ``tensors`` (leaf copies), then the result."""
        opt = torch.optim.LBFGS(tensors, lr=1, max_iter=group["inner_steps"], line_search_fn="strong_wolfe",
                                tolerance_grad=1e-14, tolerance_change=1e-16)

        def closure():
            opt.zero_grad()
            value = objective()
            value.backward()
            return value

        opt.step(closure)
        return [t.detach() for t in tensors]

    def step(self, inputs: torch.Tensor, terminal_loss) -> float:
        """One E-MSA iteration (forward, backward, layer-wise minimisation); returns the batch loss before it."""
        group = self.param_groups[0]
        rho, wd = group["rho"], group["weight_decay"]
        r = read_control(self.module, self.spec, inputs.dtype)
        layer, h = r.layers[0], r.step_size
        B = inputs.shape[0]
        with torch.no_grad():
            traj = rollout(self.fns, self.spec, layer, None, {"s": inputs}, h, n_steps=len(layer.controls))
        sK = traj.states[-1]["s"].detach().requires_grad_(True)
        if self.head is not None:
            zK = self.head(sK)
            z_leaf = zK.detach().requires_grad_(True)
            loss = terminal_loss(z_leaf)
            (dz,) = torch.autograd.grad(loss, z_leaf)
            lam_z = B * dz
            (lam_K,) = torch.autograd.grad(zK, sK, grad_outputs=lam_z)
            lam_K = lam_K.detach()
        else:
            loss = terminal_loss(sK)
            (pK,) = torch.autograd.grad(loss, sK)
            lam_K = B * pK.detach()
        with torch.no_grad():
            back = costates(self.fns, self.spec, layer, traj, h, {"s": lam_K})
        h_t = torch.as_tensor(h, dtype=inputs.dtype)
        # the arguments are validated once per step, the inner iterations call the generated code unchecked
        augmented_hamiltonian(self.fns, traj.states[0]["s"], back.costates[1]["s"], traj.states[1]["s"], back.costates[0]["s"],
                              layer.controls[0], h, rho)
        new = []
        for k, theta in enumerate(layer.controls):
            s, s_next = traj.states[k]["s"], traj.states[k + 1]["s"]
            lam, lam_next = back.costates[k]["s"], back.costates[k + 1]["s"]
            leaves = [theta[n].detach().clone().requires_grad_(True) for n in _CONTROLS]

            def objective(leaves=leaves, s=s, s_next=s_next, lam=lam, lam_next=lam_next):
                th = dict(zip(_CONTROLS, leaves))
                value = augmented_hamiltonian(self.fns, s, lam_next, s_next, lam, th, h_t, rho, checked=False)
                return value + 0.5 * wd * sum((t ** 2).sum() for t in leaves)

            new.append(dict(zip(_CONTROLS, self._minimise(objective, leaves, group))))
        if self.head is not None:
            C = self.head.weight.detach().clone().requires_grad_(True)
            c = self.head.bias.detach().clone().requires_grad_(True)
            z_old = zK.detach()
            s_last = traj.states[-1]["s"].detach()

            def head_objective():
                z = s_last @ C.T + c
                ham = (lam_z * z).sum(-1)
                return (ham + 0.5 * rho * ((z_old - z) ** 2).sum(-1) + 0.5 * rho * ((lam_K - lam_z @ C) ** 2).sum(-1)).mean() \
                    + 0.5 * wd * ((C ** 2).sum() + (c ** 2).sum())

            C_new, c_new = self._minimise(head_objective, [C, c], group)
        with torch.no_grad():
            for blk, th in zip(self.module.blocks, new):
                blk[0].weight.copy_(th["W1"])
                blk[0].bias.copy_(th["b1"])
                blk[2].weight.copy_(th["W2"])
                blk[2].bias.copy_(th["b2"])
            if self.head is not None:
                self.head.weight.copy_(C_new)
                self.head.bias.copy_(c_new)
        return float(loss.detach())
