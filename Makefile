# The two commands of the README: `make demo` and `make test`.
# Both set up .venv on first use (tools/install_env.sh).
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.mmaff-installed
DEPS   := tools/install_env.sh setup.py $(wildcard requirements/*.txt)
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each takes whole test files.
TEST_WORKERS ?= 2

.PHONY: setup demo test lint clean-venv

setup: $(STAMP)

$(STAMP): $(DEPS)
	bash tools/install_env.sh
	touch $@

demo: $(STAMP)
	$(PYTHON) tools/train_toy_segmenter.py

test: $(STAMP)
	$(PYTHON) -m pytest tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check mmaff tools tests configs

clean-venv:
	rm -rf $(VENV)
