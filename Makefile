# riskd: everything a newcomer needs is `make run` (daemon on the embedded simulator) and `make test`.
# project-x-py needs Python >= 3.12 and the machine image keeps 3.11 as python3, so find 3.12 explicitly.
PYTHON ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12 /usr/bin/python3.12; do \
            $$p -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))' >/dev/null 2>&1 && echo $$p && break; done)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install test run stop clean help

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

run: $(STAMP)  ## start the simulator with a demo account and riskd on it (Ctrl-C stops both)
	$(BIN)/python scripts/run_demo.py

clean:  ## remove the virtualenv and runtime files
	rm -rf $(VENV) var .pytest_cache .hypothesis
