"""Adding a recurrent cell hjsym has never seen: the minimal gated unit (MGU), by a spec alone.

The pipeline (parser, derivation, code generation, checks, reports) is not touched: the cell is a
Spec (hjsym/architectures/mgu.py, ~40 lines with its plain-torch module) and this script. To add
your own, copy both: write the gates as definitions and the field F, name your module's parameters
as the spec's controls (or give it hjsym_controls()), and run this script.

    python derivations/mgu.py            # prints the derivation and the checks
    python derivations/mgu.py --report   # also writes reports/mgu/
"""

import sys

import torch

import hjsym
from hjsym.architectures.mgu import ARCHITECTURE, SPEC as spec, MinimalGatedUnit

# 1. The spec: one gate f, a candidate n that sees the gated state, F = f (n - s).
for name, text in spec.dynamics.definitions:
    print(f"{name} = {text}")
print("F =", spec.dynamics.field)
spec.validate()  # every name bound, every symbol used, no eval

# 2. Derive: the chain rule through f and n (n depends on s also through f), costate, gradients.
derivation = hjsym.derive(spec)
print(derivation.text())

# 3. Check a freshly made MGU module (a user's module of this kind goes the same way: module=...).
torch.manual_seed(0)
report = hjsym.check(ARCHITECTURE, module=MinimalGatedUnit(4, 6), negative_controls=True)
print(report.table())
for c in report.checks:
    print(f"  negative control of {c.name}: error {c.details['negative_control']['max_abs_err']:.1e} (must fail; "
          f"{'fails' if not c.details['negative_control']['passed'] else 'did not fail'})")

if "--report" in sys.argv:
    for path in hjsym.report(["mgu"], out="reports"):
        print("wrote", path)
