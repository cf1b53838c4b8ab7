# The HSIR kit. `make reproduce` runs the embedded profile end to end; `make test` runs the tests.
# Each target sets up .venv from the pinned requirements.txt first, when it is missing or stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PROFILE ?= embedded
# Where torch 2.13.0+cpu comes from when the default index does not have it (users' machines).
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# The embedded and smoke profiles never need the hub: offline, a stray hub call fails at once instead of
# retrying for ~45 s. The paper profile loads hub models and datasets, so it stays online.
OFFLINE := $(if $(filter paper,$(PROFILE)),,HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1)
TEST_OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1

.PHONY: setup data reproduce quickstart test lab lint bench figures clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-deps torch==2.13.0+cpu \
	  || $(PY) -m pip install -q --no-deps torch==2.13.0+cpu --extra-index-url $(TORCH_INDEX)
	$(PY) -m pip install -q --no-deps -r requirements.txt
	# the kit itself, importable from the venv (kernels included) without a build step
	$(PY) -c 'import site, sys; open(site.getsitepackages()[0] + "/hsir-kit.pth", "w").write(sys.argv[1] + "\n")' $(CURDIR)
	touch $@

setup: $(VENV)/.installed data

# The benchmark splits the profile reads (params/$(PROFILE)/data.yaml): local files are used as they are, a split
# without one is fetched once from the hub into $$HSIR_CACHE_DIR/data (hsir.data), so later runs work offline.
data: $(VENV)/.installed
	$(PY) -m hsir.data fetch --profile $(PROFILE)

# SEEDS: other seeds for the claim rows (hsir.seeds), e.g. `make reproduce SEEDS="1 2"` after a finished run
SEEDS =
reproduce: setup
	$(OFFLINE) $(PY) -m hsir.reproduce --profile $(PROFILE) $(if $(strip $(SEEDS)),--seeds $(SEEDS),)

quickstart: setup
	$(OFFLINE) $(PY) -m hsir.reproduce --profile $(PROFILE) --only 00_quickstart

test: $(VENV)/.installed
	$(TEST_OFFLINE) $(PY) -m pytest -q

lab: setup
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

lint: setup
	$(VENV)/bin/ruff check hsir tests notebooks
	$(VENV)/bin/nbstripout --verify notebooks/*.ipynb

bench: setup
	$(OFFLINE) $(PY) -m hsir.bench generate
	$(OFFLINE) $(PY) -m hsir.bench scoring
	$(OFFLINE) $(PY) -m hsir.bench train

clean:
	rm -rf runs/smoke .pytest_cache
