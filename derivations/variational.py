"""The variational family: a functional of curves, a Wasserstein gradient flow and the mean-field limit, by specs alone.

Three specs (hjsym/architectures/brachistochrone.py, fokker_planck.py, mean_field.py) give a functional
and what it is a functional of; the engine derives the rest. To add your own, copy one:

* a functional of curves: Functional(integrand, variable, unknowns=((y, y'),)), every name a Scalar;
  hjsym derives the first variation, the Euler-Lagrange equation (checked against SymPy's
  euler_equations), the Beltrami identity, the Legendre transform and the Hamilton-Jacobi equation;
* a free energy of a density: GradientFlow(energy, density, variable, potential, example=...);
  hjsym derives the first variation, the Wasserstein gradient flow, the Gibbs equilibrium, the
  dissipation identity and, for a quadratic example potential, the Gaussian solution and JKO step;
* a two-layer network: MeanField(preactivation, readout, activations, loss); hjsym derives the
  first variation of the loss in the neuron measure, the velocity field and the finite-width gradient.

    python derivations/variational.py            # prints the derivations and the checks
    python derivations/variational.py --report   # also writes reports/{brachistochrone,fokker-planck,mean-field}/
"""

import sys

import hjsym
from hjsym.architectures.brachistochrone import SPEC as brachistochrone
from hjsym.architectures.fokker_planck import SPEC as fokker_planck
from hjsym.architectures.mean_field import SPEC as mean_field

# 1. The specs: one functional each, in plain mathematics (no eval).
print("brachistochrone: T[y] = int", brachistochrone.functional.integrand, "dx")
print("fokker-planck:   F[rho] = int", fokker_planck.gradient_flow.energy, "dx, example V =", fokker_planck.gradient_flow.example)
print("mean-field:      phi = a sigma(", mean_field.mean_field.preactivation, "), loss", mean_field.mean_field.loss)

# 2. Derive: every step computed by SymPy, each verified where it can be (difference reduced to zero).
for spec in (brachistochrone, fokker_planck, mean_field):
    derivation = hjsym.derive(spec)
    print()
    print(derivation.text())

# 3. Check against real torch computations (direct minimisation, a finite-volume solver and a JKO scheme, autograd through
#    nn.Linear networks), each with its negative control.
for name in ("brachistochrone", "fokker-planck", "mean-field"):
    report = hjsym.check(name, negative_controls=True)
    print()
    print(report.table())
    for c in report.checks:
        neg = c.details["negative_control"]
        print(f"  negative control of {c.name}: {neg['perturbation']} -> {'fails' if not neg['passed'] else 'did not fail'}")

if "--report" in sys.argv:
    for path in hjsym.report(["brachistochrone", "fokker-planck", "mean-field"], out="reports"):
        print("wrote", path)
