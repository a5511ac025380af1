"""Scaled dot-product attention as a Gibbs average: the gradient of a log-sum-exp.

With the query ``x``, keys ``K_j`` and score offsets ``b_j`` (0, or -inf where a mask hides a
key), ``f(x) = eps LSE_j((K_j . x + b_j)/eps)`` with ``eps = sqrt(d_k)`` is a log-sum-exp layer,
hence the Hopf-Cole solution of ``u_t + |grad u|^2 = eps Lap u`` with atoms ``y_j = 2t K_j``. Its
gradient in the logits is the softmax, so attention is
``softmax(Q K^T / sqrt(d_k)) V = grad_z LSE_{sqrt(d_k)}(z)|_{z = Q K^T} V = E_pi[V]``. With scores
``-|x - y_j|^2/(4t)`` and values = keys, attention is one characteristic step
``x - 2t grad u`` of that solution; the entropy of the weights reads each head as a particle
(one key wins) or a wave (spread over keys).
"""

from ..networks.attention import attention_references
from ..spec.registry import Architecture, KeyResult
from ..spec.spec import AtomicData, Network, Scalar, Spec, Tensor

SPEC = Spec(
    name="attention",
    title="Scaled dot-product attention",
    family="exact",
    summary=r"$\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$ is the gradient of the log-sum-exp $\mathrm{LSE}_{\sqrt{d_k}}$ in its logits, "
    r"contracted with $V$: a Gibbs average; $L^2$ attention with values = keys is one characteristic step $x - 2t\nabla u$.",
    symbols=(
        Scalar("eps", latex=r"\varepsilon", doc=r"temperature = viscosity; $\sqrt{d_k}$ for scaled dot-product attention"),
        Tensor("K", ("atom", "dim"), doc="keys (one per atom)"),
        Tensor("b", ("atom",), doc=r"score offsets: 0, or $-\infty$ where a mask hides the key"),
        Tensor("V", ("atom", "value"), doc="values"),
        Tensor("y", ("atom", "dim"), doc="atom positions of the initial data"),
        Tensor("g", ("atom",), doc="initial values at the atoms"),
    ),
    hamiltonian="norm2(p)",
    viscosity="eps",
    initial_data=AtomicData(points="y", values="g"),
    network=Network(output="eps * lse((dot(K, x) + b) / eps)", weights=("K", "b")),
    values="V",
    passes=("entropy", "characteristic-step"),
    references=("hjdl2026", "hopf1950", "cole1951", "vaswani2017"),
)

# the page leads with the attention theorem (softmax . V = grad LSE . V), checked on scaled_dot_product_attention
ARCHITECTURE = Architecture(SPEC, networks=attention_references, position=40, key_result=KeyResult("attention:1", "sdpa"))
