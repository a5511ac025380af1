"""The selective diagonal SSM (Mamba-style): the zero-order-hold step of ``ds/dt = A s + B x`` with
an input-dependent step ``Delta = dt softplus(W_d x + b_d)`` per state.
"""

from ..networks.control import selective_references
from ..spec.registry import Architecture
from ..spec.spec import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="ssm-selective",
    title="Selective diagonal SSM (Mamba-style, input-dependent step)",
    family="control",
    summary="$s^+ = e^{\\Delta A} s + A^{-1}(e^{\\Delta A} - 1) B x$ with $\\Delta = \\delta\\, \\mathrm{softplus}(W^{\\Delta} x + b^{\\Delta})$: the exact flow of "
    "$ds/dt = A s + B x$ over an input-dependent time; as $\\delta \\to 0$, $ds/dt = \\mathrm{softplus}(W^{\\Delta} x + b^{\\Delta})(A s + B x)$.",
    state="s",
    symbols=(
        Scalar("dt", latex=r"\delta", doc="time scale of the step (1 for the module)"),
        Tensor("x", ("input",), doc="input $x_k$ at step $k$"),
        Tensor("A", ("dim",), doc="diagonal of the state matrix (negative: -exp(A_log))"),
        Tensor("B", ("dim", "input"), doc="input matrix"),
        Tensor("W_d", ("dim", "input"), latex=r"W^{\Delta}", doc="step projection (selectivity)"),
        Tensor("b_d", ("dim",), latex=r"b^{\Delta}", doc="step bias"),
    ),
    dynamics=Dynamics(
        field="((exp(Delta * A) - 1) * s + (exp(Delta * A) - 1) / A * (B @ x)) / dt",
        controls=("A", "B", "W_d", "b_d"),
        step_size="dt",
        inputs=("x",),
        definitions=(("Delta", "dt * softplus(W_d @ x + b_d)"),),
    ),
    references=("hjdl2026", "pontryagin1962", "gu2022", "gu2023"),
)

ARCHITECTURE = Architecture(SPEC, networks=selective_references, position=160)
