"""The checks layer: two routes per check, tolerances from the size of the terms, negative controls.

Checks are declared (:mod:`.engine`): route A an operator on the real module, route B generated
functions on its read-out weights. The criteria (:mod:`.criteria`), the results (:mod:`.results`),
autograd helpers (:mod:`.autograd`), the suites chosen from the spec (:mod:`.suites`) and the API
``hjsym.check`` (:mod:`.api`).
"""
