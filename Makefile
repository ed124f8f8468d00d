# riskd: everything a newcomer needs is `make run` (daemon on the embedded simulator) and `make test`.
# project-x-py needs Python >= 3.12 and the machine image keeps 3.11 as python3, so find 3.12 explicitly.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
            $$p -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))' >/dev/null 2>&1 && echo $$p && break; done)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install test fault-suite bench bench-quick run stop clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): setup.cfg pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python >= 3.12 not found (tried python3.12 and ~/.pyenv/versions/3.12*)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv with Python 3.12 and install riskd + test tools

test: $(STAMP)  ## run the whole test suite (unit, rules, integration, end-to-end)
	$(BIN)/python -m pytest -q -m 'not slow' -p no:cacheprovider

fault-suite: $(STAMP)  ## fault suite incl. long modes (10,000 payloads, repeated kill -9, 90 s outages); table in docs/reliability.md
	RISKD_FAULT_LONG=1 RISKD_FAULT_REPORT=docs/reliability.md $(BIN)/python -m pytest -q -rxX -p no:cacheprovider tests/faults

bench: $(STAMP)  ## full benchmarks (latency 1/10/20 accounts x 0/2k/20k quotes/s, floor, memory, placement, throughput search, rule cost by day size; ~35 min) -> docs/performance.md
	-$(BIN)/python bench/latency.py
	$(BIN)/python bench/floor.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/placement.py
	-$(BIN)/python bench/throughput.py
	$(BIN)/python bench/rule_cost.py
	$(BIN)/python bench/rule_cost.py --basis net
	$(BIN)/python bench/report.py

bench-quick: $(STAMP)  ## quick benchmarks (1 account, < 1 min; CI smoke) -> docs/performance.md
	$(BIN)/python bench/latency.py --quick
	$(BIN)/python bench/floor.py --quick
	$(BIN)/python bench/memory.py --quick
	$(BIN)/python bench/placement.py --quick
	$(BIN)/python bench/report.py --quick

run: $(STAMP)  ## start the simulator with a demo account and riskd on it (Ctrl-C stops both)
	$(BIN)/python scripts/run_demo.py

clean:  ## remove the virtualenv and runtime files
	rm -rf $(VENV) var .pytest_cache .hypothesis
