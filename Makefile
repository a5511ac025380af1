# The two commands of the README: `make reports` (derive, check and report every architecture
# into reports/) and `make test` (the test suite). Both set up .venv on first use.
.PHONY: setup reports experiments test bench clean

setup:
	bash scripts/setup.sh

# PDFs (every page and the combined reports/hjsym.pdf) when a TeX engine is installed
reports: setup
	.venv/bin/hjsym report all --out reports --format $$(command -v pdflatex >/dev/null && echo html,tex,pdf || echo html,tex)

experiments: setup
	.venv/bin/hjsym experiment all --out reports

test: setup
	.venv/bin/python -m pytest -n auto --dist loadfile

bench: setup
	.venv/bin/hjsym bench

clean:
	rm -rf .venv build *.egg-info .pytest_cache
