"""The networks layer: real torch modules, how hjsym reads them, and how it perturbs them.

Reference networks and their readouts by family (:mod:`.lse`, :mod:`.mlp`, :mod:`.attention`,
:mod:`.control`), behind one readout interface (:mod:`.readout`); perturbations for negative
controls in one registry (:mod:`.perturb`); seeded, cached training (:mod:`.training`); loading a
user's ``FILE.py:NAME`` (:mod:`.user`).
"""
