# The two commands of the README. Both set up .venv first (idempotent).
.PHONY: setup demo test lint bench reproduce docs

setup:
	@bash scripts/setup.sh

# Main job: the default comparison (specs/classic-demo.toml), then its report.
demo: setup
	.venv/bin/clr-rl compare specs/classic-demo.toml --workers 2
	.venv/bin/clr-rl report results/classic-demo

# The test suite (CI runs exactly this through .ci/run).
test: setup
	.venv/bin/lint-imports
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check clr_rl tests benchmarks
	.venv/bin/mypy
	.venv/bin/lint-imports

bench: setup
	.venv/bin/python benchmarks/bench_train.py

# Retrain one run of each committed reference batch and compare it exactly with its summary.csv.
reproduce: setup
	.venv/bin/python scripts/reproduce.py

# The documentation site (mkdocs.yml, docs/) into site/; --strict fails on a broken link or a missing page.
docs: setup
	.venv/bin/mkdocs build --strict --site-dir site
