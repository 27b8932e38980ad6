# Two commands do all the set-up on a fresh machine: `make bench` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
REPEAT ?= 3
ARGS   ?=
NODE   ?=  # the bundled variants' Node.js major (default 20); NODE=24 writes to results/node24
SHARD  ?=  # K/N: measure the K-th of N parts (writes to results/shard-K); `make merge` joins them

.PHONY: bench merge test lint setup engine browser engines engines-stop engines-status bases report list clean-venv

bench: setup engine  ## build and measure every variant; prints the table
	$(BIN)/harness run --repeat $(REPEAT) $(if $(strip $(NODE)),--build-arg NODE=$(strip $(NODE))) $(if $(strip $(NODE)$(SHARD)),--out $(OUT)$(if $(strip $(SHARD)),/shard-$(firstword $(subst /, ,$(strip $(SHARD)))))) $(if $(strip $(SHARD)),--shard $(strip $(SHARD))) $(ARGS)

merge: setup  ## join the shards' runs ($(OUT)/shard-*) into one run in $(OUT)
	$(BIN)/harness merge $(sort $(wildcard $(OUT)/shard-*)) --out $(OUT)

test: setup engine browser  ## every test, against a real engine (and Chromium for the report)
	$(BIN)/pytest $(ARGS)

lint: setup  ## ruff check, and no function above cyclomatic complexity 20 (radon rank D or worse)
	$(BIN)/ruff check harness tests benchmarks
	@out=$$($(BIN)/radon cc -s -n D --show-closures harness); \
	  if [ -n "$$out" ]; then echo "above complexity 20:"; echo "$$out"; exit 1; fi

setup: $(BIN)/.installed

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

engine:  ## start a Docker engine if none answers (as root on Debian)
	bash scripts/ensure-engine.sh

browser:  ## Chromium for the HTML report's browser tests (only `make test` needs it)
	bash scripts/ensure-browser.sh

engines: engine  ## also docker20, docker26, docker26-containerd, podman side by side (a second call starts nothing)
	bash scripts/engines.sh install
	bash scripts/engines.sh start

engines-stop:  ## stop every engine scripts/engines.sh started under $HARNESS_STATE, by pid
	bash scripts/engines.sh stop

engines-status:  ## each engine: name, DOCKER_HOST, answers or not
	bash scripts/engines.sh status

bases: setup engine  ## show how base images resolve; build missing stand-ins
	$(BIN)/harness bases --build

report: setup  ## regenerate the newest run's table and chart (no engine needed)
	$(BIN)/harness report

list: setup
	$(BIN)/harness list

schema: setup  ## rewrite docs/schema/results.schema.json from harness/model.py
	$(BIN)/python -m harness.model > docs/schema/results.schema.json

clean-venv:
	rm -rf $(VENV)

# --- targets the CI workflows run (.github/workflows); each also runs locally ---------
DATA_BRANCH ?= results-data
BASELINE    ?= baseline
RESULTS     ?= results
# Where bench (with NODE or SHARD) and merge write: results, or results/nodeN.
OUT          = $(if $(strip $(NODE)),$(RESULTS)/node$(strip $(NODE)),$(RESULTS))
SITE        ?= site
COMPARE     ?= compare.md

.PHONY: history-restore history-publish site budgets baseline-restore pr-compare

history-restore:  ## results/history.jsonl from the data branch (empty on the first night)
	mkdir -p $(RESULTS)
	if git fetch -q origin $(DATA_BRANCH) 2>/dev/null; then \
	  git show FETCH_HEAD:history.jsonl > $(RESULTS)/history.jsonl 2>/dev/null || true; fi

history-publish:  ## commit the history and the newest run to the data branch
	bash scripts/publish-history.sh $(DATA_BRANCH) $(RESULTS)

site: setup  ## the newest run's report, as a directory to publish
	rm -rf $(SITE) && mkdir -p $(SITE)
	cp -L $(RESULTS)/latest/* $(SITE)/

budgets: setup  ## exit 3 when the newest run breaks a budget of variants.toml
	$(BIN)/harness compare $(RESULTS)/latest $(RESULTS)/latest --check > /dev/null

baseline-restore:  ## the latest nightly's results.json into $(BASELINE)/ (none before the first nightly)
	mkdir -p $(BASELINE)
	if git fetch -q origin $(DATA_BRANCH) 2>/dev/null \
	  && git show FETCH_HEAD:latest/results.json > $(BASELINE)/results.json.new 2>/dev/null; then \
	  mv $(BASELINE)/results.json.new $(BASELINE)/results.json; \
	else rm -f $(BASELINE)/results.json.new; \
	  echo "baseline-restore: no nightly on the $(DATA_BRANCH) branch yet; nothing to compare with"; fi

pr-compare: setup  ## compare.md: the newest run against $(BASELINE) (or a note that there is none), then its table
	status=0; { if [ -f $(BASELINE)/results.json ]; then \
	    $(BIN)/harness compare $(BASELINE) $(RESULTS)/latest --format md || status=$$?; \
	  else echo "No baseline yet: the first nightly run has not published one (the $(DATA_BRANCH) branch)."; fi; \
	  echo; echo "<details><summary>This run's table</summary>"; echo; \
	  cat $(RESULTS)/latest/table.md; echo; echo "</details>"; } > $(COMPARE); exit $$status
