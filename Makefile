# The README's two commands: `make demo` and `make test`. Both install into .venv when missing.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lock clean-venv

$(STAMP): requirements.lock pyproject.toml scripts/install-system-packages.sh
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (the kit needs Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	bash scripts/install-system-packages.sh
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mnistkit demo

# One worker per core (at most 4: a grading can take a few GiB). Each test file runs on one
# worker (--dist loadfile), so a file's session fixtures (a graded class, a toy course) are
# computed once. (pytest-xdist 3.8's xdist_group marks have no effect under pytest 9 here.)
# The slowest tests are listed at the end. `mnistkit check` goes first: a gap in an exercise's
# declaration (docs/authoring.md) is named in a second, not after minutes of grading.
WORKERS ?= auto
test: $(STAMP)
	$(BIN)/mnistkit check
	$(BIN)/python -m pytest -n $(WORKERS) --maxprocesses 4 --dist loadfile --durations 15

# Re-pin everything after changing requirements.in (needs the package registries).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet -r requirements.in
	{ echo '# Exact versions of everything the kit installs; regenerate with `make lock`.'; \
	  .venv-lock/bin/python -m pip freeze; } > requirements.lock
	rm -rf .venv-lock

clean-venv:
	rm -rf $(VENV)
