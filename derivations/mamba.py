"""Mamba's selective scan as a controlled system: the plain-torch reference, and mambapy's MambaBlock when installed.

    python derivations/mamba.py            # prints the derivation and the checks
    python derivations/mamba.py --report   # also writes reports/mamba/
"""

import sys

import torch

import hjsym
from hjsym.architectures.mamba import SPEC as spec

# 1. The spec: per channel e and state n (one state index), h' = exp(Delta A) h + Delta B(x) x with the input-dependent
#    Delta = dt softplus(W_d x + b_d) and B(x) = W_B x (dt = 1 is the scan); S gathers each state's channel input.
print("field F:", spec.dynamics.field, "| Delta:", spec.dynamics.definitions[0][1])

# 2. Derive.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. Checks against the plain-torch reference scan (Mamba's initialisation, seeded).
print(hjsym.check("mamba").table())

# 4. mambapy's MambaBlock: its scan, from h = 0 on the scan's input, at the block's own precision (it takes A in float32).
try:
    from mambapy.mamba import MambaBlock, MambaConfig
except ImportError:
    print("mambapy is not installed (pip install 'hjsym[adapters]'): the MambaBlock check is skipped")
else:
    torch.manual_seed(0)
    block = MambaBlock(MambaConfig(d_model=4, n_layers=1, d_state=3))
    print(hjsym.check("mamba", module=block, dtype="float32").table())

if "--report" in sys.argv:
    for path in hjsym.report(["mamba"], out="reports"):
        print("wrote", path)
