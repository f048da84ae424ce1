# One-command set-up: `make demo` (venv + index + a query, related papers, themes), `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INDEX  := indexes/default
export HF_HUB_OFFLINE := 1

.PHONY: venv demo index test clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	# the ray extra (ray[data], no torch) so the suite runs `build --engine ray` too; serve: web app + MCP
	$(BIN)/pip install -q -e '.[test,ray,serve]'
	touch $@

venv: $(VENV)/.installed

index: venv
	$(BIN)/semsearch build corpus/ --index $(INDEX)

demo: index
	$(BIN)/semsearch search "how do I shard embedding tables?" -k 5 --index $(INDEX)
	$(BIN)/semsearch similar "AutoShard" -k 3 --index $(INDEX)
	$(BIN)/semsearch themes --theme "recommendation systems" --theme quantization --theme sharding --index $(INDEX)

# pytest exit 5 = no tests collected: a broken set-up, never a pass; -rs prints why a test was skipped
# (the browser tests skip without Chromium, except under CI=true where that fails)
test: venv
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -rs; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: set-up is broken" >&2; exit 1; fi; exit $$rc

clean:
	rm -rf $(VENV) $(INDEX) .pytest_cache
