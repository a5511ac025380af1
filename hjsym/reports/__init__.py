"""The reports layer: HTML and LaTeX pages, the index, fragments for papers, figures and PDFs.

Pages and the index (:mod:`.pages`), breaking wide equations (:mod:`.equations`), references
(:mod:`.references`), TeX builds (:mod:`.texbuild`), LaTeX escaping (:mod:`.texescape`), tables
(:mod:`.tables`), figures (:mod:`.figures`) and the Jinja templates (``templates/``).
"""
