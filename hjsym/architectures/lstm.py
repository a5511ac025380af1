"""The LSTM in torch's convention: state ``(c, h)``, ``c' = f c + i g`` (a gated Euler step of the
leaky integrator ``dc/dt = -(1 - f) c + i g``) and ``h' = o tanh(c')``.
"""

from ..networks.control import lstm_references
from ..spec.registry import Architecture
from ..spec.spec import Claim, Dynamics, Scalar, Spec, Tensor

_GATES = (("ig", "i", "input gate", "sigmoid"), ("fg", "f", "forget gate", "sigmoid"), ("gg", "g", "cell candidate", "tanh"),
          ("og", "o", "output gate", "sigmoid"))


def _weights():
    out = []
    for n, (name, letter, what, _) in enumerate(_GATES):
        rows = f"rows {n}d:{n + 1}d"
        out += [Tensor(f"W_{letter}", ("dim", "input"), latex=f"W^{{{letter}}}", doc=f"{what}: input weight (weight_ih {rows})"),
                Tensor(f"U_{letter}", ("dim", "dim"), latex=f"U^{{{letter}}}", doc=f"{what}: recurrent weight (weight_hh {rows})"),
                Tensor(f"b_{letter}", ("dim",), latex=f"b^{{{letter}}}", doc=f"{what}: bias (bias_ih + bias_hh {rows})")]
    return tuple(out)


SPEC = Spec(
    name="lstm",
    title="Long short-term memory (LSTM)",
    family="control",
    summary="State $(c, h)$; $c^+ = f c + i g$, $h^+ = o \\tanh(c^+)$: the cell update is a gated Euler step of the leaky integrator "
    "$dc/dt = -(1 - f) c + i g$. The costate $(p^c, p^h)$ recursion is backprop through time.",
    state="h",
    symbols=(Scalar("dt", latex=r"\delta", doc="step size (1 for torch.nn.LSTM)"), Tensor("x", ("input",), doc="input $x_k$ at step $k$"))
    + _weights(),
    dynamics=Dynamics(
        field=(("c", "cn - c"), ("h", "og * tanh(cn) - h")),
        controls=tuple(f"{kind}_{letter}" for _, letter, _, _ in _GATES for kind in ("W", "U", "b")),
        step_size="dt",
        inputs=("x",),
        output="h",
        definitions=tuple((name, f"{act}(W_{letter} @ x + U_{letter} @ h + b_{letter})", letter) for name, letter, _, act in _GATES)
        + (("cn", "fg * c + ig * gg", r"\tilde{c}"),),
        claims=(
            Claim("torch's LSTM update", "c + F_c", "fg * c + ig * gg",
                  "torch.nn.LSTM documents $c' = f c + i g$ (and $h' = o \\tanh(c')$); with $\\delta = 1$ the spec's step is exactly that", "convention"),
            Claim("The cell update is a gated Euler step", "F_c", "-(1 - fg) * c + ig * gg",
                  "an Euler step of the leaky integrator $dc/dt = -(1 - f) c + i g$: leak rate $1 - f$ (the forget gate), drive $i g$"),
        ),
    ),
    references=("hjdl2026", "pontryagin1962", "lecun1988", "hochreiter1997", "chen2018"),
)

ARCHITECTURE = Architecture(SPEC, networks=lstm_references, position=140)
