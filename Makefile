# The two commands: `make run` (the platform on this machine) and `make test` (the whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# auto: the CUDA build of torch and the `gpu` extra (Unsloth, bitsandbytes) where `nvidia-smi` lists a GPU, else the
# CPU build; cpu or cuda to choose. `python garage/install.py plan` prints what would be installed here, and why.
GARAGE_DEVICE ?= auto
# The real models installed for `run`, `demo` and `install` (never needed by `test`): all, none, or a list such as
# smollm2,gemma3-270m.
GARAGE_MODELS ?= all

.PHONY: run test demo install models bench screenshots clean

install: $(STAMP) models

# torch for this machine's device first, so that nothing pulls a build for another; then the project, and llama.cpp's
# GGUF converter into a folder of its own (garage/install.py says why each).
$(STAMP): pyproject.toml garage/install.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) garage/install.py apply --part base --device '$(GARAGE_DEVICE)'
	touch $(STAMP)

# The model files only, from PyPI; a model already installed is skipped.
models: $(STAMP)
	$(PY) garage/install.py apply --part models --models '$(GARAGE_MODELS)'

run: install
	$(VENV)/bin/garage run

test: $(STAMP)
	GARAGE_VAR_DIR=$(CURDIR)/var/test $(PY) -m garage.embedded --test -- $(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(VENV)/bin/garage pipeline samples/lumen-valley-field-guide.md

# README's pictures: the newcomer's journey (tests/test_journey.py) walked with a real model, one picture per step.
screenshots: install
	GARAGE_JOURNEY_MODEL=pypi/SmolLM2-135M-Instruct GARAGE_JOURNEY_SCREENSHOTS=$(CURDIR)/docs \
		$(MAKE) test PYTEST_ARGS="tests/test_journey.py --timeout 3600"

bench: $(STAMP)
	$(PY) -m garage.embedded -- $(PY) bench/latency.py

clean:
	rm -rf var/test var/media var/artifacts
