# The two commands: `make run` and `make test`. Everything else helps them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installs come from the dev lock (every package pinned and hashed); a new lock means a new stamp.
LOCK := requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) | sha1sum | cut -c1-12)
PORT ?= 8000
export PORT

.PHONY: install lock browser-tools run run-prod test test-fast test-browser lint format migrations-check seed sweep bench loadtest audit clean

$(STAMP): $(LOCK)
	@echo "Setting up: creating $(VENV) and installing the locked requirements (a few minutes on a first run)..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The lock pins pip too; --require-hashes refuses any file whose hash is not in the lock.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## make lock: after editing requirements.txt or requirements-dev.txt, pin every package they pull in
## (with hashes) into requirements.lock (runtime) and requirements-dev.lock (runtime + dev).
## PyPI only: the local pip configuration's mirrors and wheel folders never reach the locks.
## Extras are kept (`cachecontrol[filecache]==...`): pip's hash-checking mode treats a dependency
## asked for with an extra (pip-audit's `CacheControl[filecache]>=0.13.0`) as unpinned unless the
## lock pins it with that extra, and picked the newest release for it once there was a newer one.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--no-strip-extras --index-url https://pypi.org/simple --no-emit-index-url
lock: install
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.txt

## make run: set up, migrate, load the demo data, then web + Celery worker + beat.
# Links in e-mails (also those the sweep below queues before the web server starts) use $(PORT).
run: export SITE_URL := $(or $(SITE_URL),http://127.0.0.1:$(PORT))
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@# One sweep now, so /healthz has a fresh heartbeat before beat's first one (after SLA_SWEEP_SECONDS).
	$(BIN)/python manage.py sla_sweep
	@# beat keeps its schedule file there (with REDIS_URL set nothing else creates the folder).
	@mkdir -p $${VAR_DIR:-var}
	@printf '%s\n' "" \
		"  Ask a Doctor is running at http://127.0.0.1:$(PORT)/" \
		"  Demo logins (password portal-demo):" \
		"    patient  patient@example.com   http://127.0.0.1:$(PORT)/questions/" \
		"    doctor   doctor@example.com    http://127.0.0.1:$(PORT)/doctor/" \
		"    staff    staff@example.com     http://127.0.0.1:$(PORT)/staff/sla/  (staff admin: /admin/)" \
		"  Watch the guarantee: the demo question \"Earache since swimming at the weekend\" turns at risk" \
		"  about a minute after seeding and is breached two minutes later; the worker logs each e-mail." \
		"  Press Ctrl+C to stop web, worker and beat." "" >$${VAR_DIR:-var}/run-banner.txt
	@echo "Starting web, worker and beat: the URL and logins follow once all three are up."
	@# The venv goes first on PATH: Procfile.dev names plain `python` and `celery`.
	@# deploy/supervise.py restarts a process that exits (with back-off) instead of stopping them all;
	@# --foreground: Ctrl+C reaches it alone, so it stops everything and make ends without "Error 130".
	PATH="$(CURDIR)/$(BIN):$$PATH" DEBUG=$${DEBUG:-true} \
		$(BIN)/python deploy/supervise.py --foreground --banner $${VAR_DIR:-var}/run-banner.txt Procfile.dev

## make run-prod: the production shape on one machine (nginx with HTTPS -> two gunicorn -> PostgreSQL
## + Redis, two Celery workers, two beats) under the supervisor; needs DATABASE_URL and REDIS_URL.
## What it does and the variables it reads: deploy/run_prod.py and README "Production".
run-prod: install
	$(BIN)/python deploy/run_prod.py

## make test: set up, lint, check migrations, run the whole suite.
test: install browser-tools lint migrations-check
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not browser and not integration"

## make browser-tools: axe-core for the accessibility browser test, at the exact version of
## tests/browser/axe/package-lock.json (npm registry, once; the test reads it from disk).
AXE_JS := tests/browser/axe/node_modules/axe-core/axe.min.js
browser-tools: $(AXE_JS)

$(AXE_JS): tests/browser/axe/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/browser/axe --no-audit --no-fund && touch $@; \
	else echo "npm is missing: the accessibility browser test will be skipped"; fi

test-browser: install browser-tools
	$(BIN)/pytest -m browser

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrations-check: install
	$(BIN)/python manage.py makemigrations --check --dry-run

## make audit: known vulnerabilities in the pinned requirements (and what they pull in),
## from PyPI's vulnerability data. --strict: a package that could not be checked fails the run,
## so an unreachable database never passes as "no known vulnerabilities".
audit: install
	@mkdir -p var
	@$(BIN)/pip-audit --strict --progress-spinner off -r requirements.txt >var/pip-audit.txt 2>&1; status=$$?; \
	cat var/pip-audit.txt; \
	if [ $$status -ne 0 ] && grep -qE "could not be audited|ConnectionError|Failed to resolve|Max retries exceeded" var/pip-audit.txt; then \
		echo ""; \
		echo "make audit: FAILED, nothing was checked: pip-audit could not get vulnerability data from PyPI's API."; \
		echo "Run 'make audit' on a machine that reaches https://pypi.org/pypi/<package>/<version>/json."; \
		exit 2; \
	fi; \
	exit $$status

seed: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo

sweep: install
	$(BIN)/python manage.py sla_sweep

## make bench: PostgreSQL database `bench` and Redis db 12 on this machine (recreated each run);
## prints a Markdown table and writes bench/results/latest.json. About 18 minutes on 2 cores.
bench: install
	$(BIN)/python -m bench.run

## make loadtest: 50 patients asking for 60 s against gunicorn on PostgreSQL (issue 7).
loadtest: install
	$(BIN)/python -m bench.loadtest

clean:
	rm -rf $(VENV) var db.sqlite3 staticfiles
