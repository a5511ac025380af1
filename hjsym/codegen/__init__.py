"""The code-generation layer: function and program specs (:mod:`hjsym.ir`) to torch code.

One printer (:mod:`.printer`), one generator for single expressions and multi-output programs
(:mod:`.generate`), the compiled function object (:mod:`.generated`), the helpers generated code
calls (:mod:`.runtime`), the adjoint sweep that runs generated step programs over a network
(:mod:`.adjoint_sweep`), and the pipeline ``hjsym.derive`` (:mod:`.pipeline`).
"""
