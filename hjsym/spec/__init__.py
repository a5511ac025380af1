"""The spec layer: what an architecture is, in plain-mathematics strings, and its validation.

:class:`~hjsym.spec.spec.Spec` and its parts (:mod:`.fields`), the safe parser (no ``eval``;
:mod:`.parse`), validation into SymPy objects (:mod:`.validate`) and the registry of architectures
(:mod:`.registry`).
"""
