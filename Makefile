# clinicpacs.orthanc — developer and CI entry points. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(CURDIR)
VENV ?= $(ROOT)/.venv
PYTHON ?= python3
BIN := $(VENV)/bin
COLLECTIONS := $(ROOT)/.collections

# Debian's docker client lives in /usr/bin; an older stand-alone client may come first on PATH.
export PATH := $(BIN):/usr/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH := false
export PYTHONDONTWRITEBYTECODE := 1

PYTEST := $(BIN)/pytest -p no:cacheprovider
MOLECULE_SCENARIOS ?= smoke default security fleet backup_restore upgrade layouts
# tools/setup.sh's profile: demo when `make demo` is the goal, test (everything) otherwise and whenever
# `make test` is a goal too. SETUP_SKIP=1 skips it (a machine set up by hand).
SETUP_PROFILE ?= $(if $(filter test,$(MAKECMDGOALS)),test,$(if $(filter demo,$(MAKECMDGOALS)),demo,test))

.PHONY: help setup venv collections images lint sanity unit integration integration-only mutations mutations-only molecule molecule-only test demo demo-clean bench bench-quick bench-quick-only clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

setup: ## install the packages this machine lacks and start the Docker engine
	tools/setup.sh $(SETUP_PROFILE)

$(BIN)/.installed: requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed ## create the project virtualenv (.venv) from requirements-dev.txt

collections: venv ## install the collections of requirements.yml into .collections (Galaxy or offline)
	VENV=$(VENV) tools/install-collections.sh $(COLLECTIONS)

images: ## build every test/demo image from Debian packages (cached by a hash of the build files)
	bash tests/images/build.sh

lint: collections ## yamllint, ansible-lint (production profile), ruff
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

sanity: collections ## ansible-test sanity on a copy of the collection (python 3.11, local)
	VENV=$(VENV) tools/sanity.sh

unit: collections ## unit tests (no Docker needed)
	$(PYTEST) tests/unit

integration: collections images integration-only ## integration tests against real Orthanc/PostgreSQL containers

mutations: collections images mutations-only ## the mutation table: each security setting weakened in a copy of the roles must fail its test

molecule: collections images molecule-only ## Molecule scenarios on clinic box containers

# The same without their prerequisites (tools/test.sh has made them already).
# Two workers, each test file on one of them with its own Orthanc and PostgreSQL (the session fixture): the tests
# mostly wait on Orthanc, PostgreSQL and ansible-playbook, so two at a time take about two thirds of the time.
integration-only:
	$(PYTEST) -n 2 --dist loadfile --durations=15 tests/images tests/integration

mutations-only:
	$(BIN)/python tests/mutations/run.py $(MUTATIONS_ARGS)

molecule-only:
	for s in $(MOLECULE_SCENARIOS); do $(BIN)/molecule test -s $$s || exit 1; done

test: setup ## every gate CI runs, side by side where they can, with the time of each step (tools/test.sh)
	MAKE="$(MAKE)" MOLECULE_SCENARIOS="$(MOLECULE_SCENARIOS)" tools/test.sh

demo: setup collections images ## provision a demo clinic into a local box container, print its address and login
	tools/demo.sh

demo-clean: ## remove the demo box, its volume and demo/
	tools/demo.sh --destroy

bench: collections images ## benchmarks (writes bench/results/*.json and SUMMARY.md; make test runs the quick size)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-quick: collections images bench-quick-only ## a CI-sized run of every benchmark (make test runs it too)

bench-quick-only:
	$(BIN)/python bench/run.py --quick $(BENCH_ARGS)

clean: ## remove the virtualenv, installed collections and build copies (images stay)
	rm -rf $(VENV) $(COLLECTIONS) .build tests/output .pytest_cache .ruff_cache
