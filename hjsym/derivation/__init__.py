"""The derivation layer: from a validated spec to numbered, reasoned steps, results and function specs.

The engine (:mod:`.engine`) runs the passes registered in :mod:`.passes` (the PDE:
:mod:`.hamilton_jacobi`, :mod:`.anisotropic`; the network: :mod:`.network`; the activations:
:mod:`.activations`; the Gibbs weights: :mod:`.gibbs`, :mod:`.semigroup`, :mod:`.diagram`; the
control family: :mod:`.pontryagin`) and returns a :class:`~hjsym.derivation.derivation.Derivation`.
"""
