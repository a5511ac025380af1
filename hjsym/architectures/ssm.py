"""A diagonal state-space model (S4D-style, real diagonal): ``s' = exp(dt A) s + B_bar x`` with the
zero-order-hold ``B_bar = (exp(dt A) - 1)/A B``: the exact flow of ``ds/dt = A s + B x`` over one
step of a piecewise constant input. Linear in state and input: with a quadratic cost the HJB
equation reduces to the LQR Riccati equation.
"""

from ..checks.suites.control_exact import SSM_CHECKS
from ..networks.control import ssm_references
from ..spec.registry import Architecture
from ..spec.spec import Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="ssm",
    title="Diagonal state-space model (S4D-style, zero-order hold)",
    family="control",
    summary="$s^+ = e^{\\Delta A} s + A^{-1}(e^{\\Delta A} - 1) B x$: the exact flow of $ds/dt = A s + B x$ over one step (zero-order hold). "
    "Linear dynamics: with a quadratic cost the value function is quadratic and solves a Riccati equation.",
    state="s",
    symbols=(
        Scalar("dt", latex=r"\Delta", doc="step (discretisation) size, exp(log_dt)"),
        Tensor("x", ("input",), doc="input $x_k$ at step $k$ (held constant over the step)"),
        Tensor("A", ("dim",), doc="diagonal of the state matrix (negative: -exp(A_log))"),
        Tensor("B", ("dim", "input"), doc="input matrix"),
    ),
    dynamics=Dynamics(
        field="((exp(dt * A) - 1) * s + (exp(dt * A) - 1) / A * (B @ x)) / dt",
        controls=("A", "B", "dt"),
        step_size="dt",
        inputs=("x",),
    ),
    references=("hjdl2026", "pontryagin1962", "gu2022", "kalman1960", "bellman1957"),
)

ARCHITECTURE = Architecture(SPEC, networks=ssm_references, position=150, checks=SSM_CHECKS)
