# PyFlow: `make run` sets everything up and starts the server; `make test` sets up what the tests need and
# runs every suite. Both work on a fresh Debian 12 machine with Python 3.11 and Node 20.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMPS := .stamps
HOST ?= 127.0.0.1
PORT ?= 5000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Waits up to 10 minutes for another package manager (a second `make test`, unattended upgrades) to let go
# of the dpkg lock instead of failing at once.
APT := DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get -y -q -o Dpkg::Use-Pty=0 -o DPkg::Lock::Timeout=600

.PHONY: run test bench docker clean system-deps venv ui test-unit test-rest test-api test-hostile test-browser test-docker test-dask

# Debian packages: bubblewrap (the node sandbox), libseccomp2 (its system call filter, through pyseccomp),
# python3 (the interpreter inside the sandbox), gcc and libc6-dev (the sandbox's zygote loop in C, built
# at the server's start), libcurl headers (pycurl, for pyresttest).
SYSTEM_PACKAGES := bubblewrap libseccomp2 python3 gcc libc6-dev libcurl4-openssl-dev libssl-dev
TEST_SYSTEM_PACKAGES := chromium

$(STAMPS):
	mkdir -p $(STAMPS)

system-deps: | $(STAMPS)
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing $$missing"; $(APT) update -qq && $(APT) install $$missing; fi

$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e ".[test,docker,bench]"
	touch $@

venv: $(STAMPS)/venv

include mk/*.mk

run: system-deps venv ui
	@echo "Starting PyFlow at http://$(HOST):$(PORT)/ (database: $${PYFLOW_DB:-~/.local/share/pyflow/pyflow.db})"
	$(VENV)/bin/pyflow serve --host $(HOST) --port $(PORT)

test-unit: system-deps venv
	$(PY) -m pytest tests/unit -q -p no:cacheprovider

test-rest: system-deps venv
	$(PY) tests/rest/run_rest_tests.py

# Schemathesis against a live server, from /api/openapi.json (bounded by tests/api/schemathesis.toml).
test-api: system-deps venv
	$(PY) -m pytest tests/api -q -p no:cacheprovider

# The hostile-code suite against the default sandbox (test-docker runs it against Docker too).
test-hostile: system-deps venv
	$(PY) -m pytest tests/hostile -q -p no:cacheprovider

# Every suite runs even when an earlier one fails; the output ends with one line per suite (passed,
# failed or skipped, and why), and under CI a skipped docker or browser suite fails the run unless
# PYFLOW_ALLOW_SKIP names it (see mk/suites.sh).
SUITES := test-unit test-rest test-api test-hostile test-browser test-docker test-dask
test: system-deps venv ui
	@STAMPS=$(STAMPS) mk/suites.sh $(SUITES)

# The editor benchmark drives Debian's chromium; the Docker benchmark uses an engine when one answers.
bench: system-deps venv ui
	@[ -x /usr/bin/chromium ] || { echo "installing chromium"; $(APT) update -qq && $(APT) install $(TEST_SYSTEM_PACKAGES); }
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) $(STAMPS) src/static/node_modules src/static/dist
