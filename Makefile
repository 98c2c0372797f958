# monthlydocs: every chore has a target; `make help` lists them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DIR ?= demo

.PHONY: help demo test lint bench translations messages browser clean lock

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	$(MAKE) --no-print-directory translations
	touch $(STAMP)

translations: ## Compile the gettext catalogs (.po -> .mo)
	$(BIN)/pybabel compile --statistics -D messages -d monthlydocs/locale

messages: $(STAMP) ## Extract strings and update every catalog (then translate)
	$(BIN)/pybabel -q extract -F babel.cfg --no-default-keywords -k _ -k _l -k gettext:2 \
	  -k ngettext:1,2 --add-location=file -w 88 -o $(VENV)/messages.pot .
	$(BIN)/pybabel -q update -i $(VENV)/messages.pot -d monthlydocs/locale -D messages \
	  --no-fuzzy-matching -w 88

demo: $(STAMP) ## Build the environment, the demo workspace, and serve its portal
	$(BIN)/monthlydocs demo --reset --serve $(DEMO_DIR)

test: $(STAMP) ## Build the environment and run every test
	$(BIN)/pytest

lint: $(STAMP) ## ruff
	$(BIN)/ruff check .

bench: $(STAMP) ## Benchmarks, each beside its raw baseline
	$(BIN)/python -m benchmarks

browser: ## Install Debian's Chromium for the browser tests (needs root)
	@command -v chromium >/dev/null || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lock: ## Re-pin requirements.lock from pyproject.toml
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[test]'
	.venv-lock/bin/pip freeze --exclude-editable > requirements.lock

clean: ## Remove the environment and generated files
	rm -rf $(VENV) $(DEMO_DIR) tests/artifacts
	find monthlydocs -name '*.mo' -delete
