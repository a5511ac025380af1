"""The GRU in torch's gate convention: ``s' = s + (1 - z)(n - s)``, an Euler step of
``ds/dt = n - s`` whose step size is the update gate ``1 - z``.
"""

from ..networks.control import gru_references
from ..spec.registry import Architecture
from ..spec.spec import Claim, Dynamics, Scalar, Spec, Tensor

SPEC = Spec(
    name="gru",
    title="Gated recurrent unit (GRU)",
    family="control",
    summary="$s^+ = s + (1 - z)(n - s)$ with torch's gates $r, z, n$: an Euler step of $ds/dt = n - s$ whose step size is the "
    "update gate $1 - z$. The costate recursion is backprop through time.",
    state="s",
    symbols=(
        Scalar("h", doc="step size (1 for torch.nn.GRU)"),
        Tensor("x", ("input",), doc="input $x_k$ at step $k$"),
        Tensor("W_r", ("dim", "input"), latex="W^{r}", doc="reset gate input weight (weight_ih rows 0:d)"),
        Tensor("W_z", ("dim", "input"), latex="W^{z}", doc="update gate input weight (weight_ih rows d:2d)"),
        Tensor("W_n", ("dim", "input"), latex="W^{n}", doc="candidate input weight (weight_ih rows 2d:3d)"),
        Tensor("U_r", ("dim", "dim"), latex="U^{r}", doc="reset gate recurrent weight (weight_hh rows 0:d)"),
        Tensor("U_z", ("dim", "dim"), latex="U^{z}", doc="update gate recurrent weight (weight_hh rows d:2d)"),
        Tensor("U_n", ("dim", "dim"), latex="U^{n}", doc="candidate recurrent weight (weight_hh rows 2d:3d)"),
        Tensor("b_r", ("dim",), latex="b^{r}", doc="reset gate bias (bias_ih + bias_hh rows 0:d)"),
        Tensor("b_z", ("dim",), latex="b^{z}", doc="update gate bias (bias_ih + bias_hh rows d:2d)"),
        Tensor("b_in", ("dim",), latex=r"b^{in}", doc="candidate input bias (bias_ih rows 2d:3d)"),
        Tensor("b_hn", ("dim",), latex=r"b^{hn}", doc="candidate recurrent bias, inside the reset gate (bias_hh rows 2d:3d)"),
    ),
    dynamics=Dynamics(
        field="(1 - z) * (n - s)",
        controls=("W_r", "W_z", "W_n", "U_r", "U_z", "U_n", "b_r", "b_z", "b_in", "b_hn"),
        step_size="h",
        inputs=("x",),
        definitions=(
            ("r", "sigmoid(W_r @ x + U_r @ s + b_r)"),
            ("z", "sigmoid(W_z @ x + U_z @ s + b_z)"),
            ("n", "tanh(W_n @ x + b_in + r * (U_n @ s + b_hn))"),
        ),
        claims=(
            Claim("torch's GRU update", "s + F", "(1 - z) * n + z * s",
                  "torch.nn.GRU documents $h' = (1 - z) n + z h$; with step size $h = 1$ the spec's step is exactly that", "convention"),
            Claim("An Euler step whose step size is the update gate", "(1 - z) * n + z * s", "s + (1 - z) * (n - s)",
                  "the convex combination is an explicit Euler step of $ds/dt = n - s$ with componentwise step size $1 - z \\in (0, 1)$"),
        ),
    ),
    references=("hjdl2026", "pontryagin1962", "lecun1988", "cho2014", "chen2018"),
)

ARCHITECTURE = Architecture(SPEC, networks=gru_references, position=130)
