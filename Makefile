# The two commands of the README: `make demo` and `make test`.
# Both set up .venv on first use (tools/install_env.sh).
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.mmaff-installed
# requirements/executorch.txt is the separate ExecuTorch venv's, not the set-up's
DEPS   := tools/install_env.sh setup.py \
          $(filter-out requirements/executorch.txt,$(wildcard requirements/*.txt))
PYTEST_ARGS ?=
# Test processes (pytest-xdist); each takes whole test files.
TEST_WORKERS ?= 2

.PHONY: setup demo test lint clean-venv
.PHONY: executorch-env

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

# The separate ExecuTorch venv of tools/deployment/export_executorch.py
# (docs/deployment_executorch.md): executorch 1.5.1 beside the pinned torch,
# the set-up's mmcv wheel (built for that torch by `make setup`), and mmaff
# from this checkout through a .pth file (no second editable install).
ET_VENV ?= .venv-executorch
executorch-env: | $(STAMP)
	@test -n "$(wildcard $(HOME)/.cache/mmaff/wheels/torch-2.14.1-*/mmcv-2.1.0-*.whl)" || { echo "error: no mmcv 2.1.0 wheel for torch 2.14.1 under ~/.cache/mmaff/wheels (make setup builds it)" >&2; exit 1; }
	test -x $(ET_VENV)/bin/python || $(PYTHON) -m venv $(ET_VENV)
	$(ET_VENV)/bin/python -m pip install -q -c requirements/torch.txt -r requirements/executorch.txt $(firstword $(wildcard $(HOME)/.cache/mmaff/wheels/torch-2.14.1-*/mmcv-2.1.0-*.whl))
	$(ET_VENV)/bin/python -c "import sysconfig; print('$(CURDIR)', file=open(sysconfig.get_paths()['purelib'] + '/mmaff-checkout.pth', 'w'))"
	$(ET_VENV)/bin/python -c "import executorch.exir, executorch.runtime, mmcv.ops, mmdet.models, mmpretrain.models, mmaff; print('executorch-env ok: torch', __import__('torch').__version__)"

# The offline kit for a GPU machine without internet (docs/offline_kit.md):
# make kit KIT_PYTHON=3.12 [KIT_OUT=kit]
KIT_PYTHON ?= 3.12
KIT_OUT    ?= kit
.PHONY: kit
kit: $(STAMP)
	PYTHON=$(PYTHON) bash tools/offline_kit.sh --python $(KIT_PYTHON) --out $(KIT_OUT)
