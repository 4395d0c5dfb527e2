# The two commands: `make run` and `make test`. Everything else helps them.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Installs come from the dev lock (every package pinned and hashed); a new lock means a new stamp.
LOCK := requirements-dev.lock
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) | sha1sum | cut -c1-12)
PORT ?= 8000
export PORT

.PHONY: install lock run run-prod test test-fast test-browser lint format migrations-check seed sweep bench loadtest audit clean

$(STAMP): $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# The lock pins pip too; --require-hashes refuses any file whose hash is not in the lock.
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## make lock: after editing requirements.txt or requirements-dev.txt, pin every package they pull in
## (with hashes) into requirements.lock (runtime) and requirements-dev.lock (runtime + dev).
## PyPI only: the local pip configuration's mirrors and wheel folders never reach the locks.
PIP_COMPILE := env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	CUSTOM_COMPILE_COMMAND="make lock" $(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --index-url https://pypi.org/simple --no-emit-index-url
lock: install
	$(PIP_COMPILE) --output-file requirements.lock requirements.txt
	$(PIP_COMPILE) --output-file requirements-dev.lock requirements-dev.txt

## make run: set up, migrate, load the demo data, then web + Celery worker + beat.
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	@# One sweep now, so /healthz has a fresh heartbeat before beat's first one (after SLA_SWEEP_SECONDS).
	$(BIN)/python manage.py sla_sweep
	@# beat keeps its schedule file there (with REDIS_URL set nothing else creates the folder).
	@mkdir -p $${VAR_DIR:-var}
	@echo ""
	@echo "  Ask a Doctor is starting at http://127.0.0.1:$(PORT)/"
	@echo "  Demo logins (password portal-demo):"
	@echo "    patient  patient@example.com   http://127.0.0.1:$(PORT)/questions/"
	@echo "    doctor   doctor@example.com    http://127.0.0.1:$(PORT)/doctor/"
	@echo "    staff    staff@example.com     http://127.0.0.1:$(PORT)/admin/  (SLA dashboard: /staff/sla/)"
	@echo "  Watch the guarantee: the demo question \"Earache since swimming at the weekend\" turns at risk"
	@echo "  about a minute after seeding and is breached two minutes later; the worker prints the e-mails."
	@echo "  Press Ctrl+C to stop web, worker and beat."
	@echo ""
	@# The venv goes first on PATH: Procfile.dev names plain `python` and `celery`.
	@# deploy/supervise.py restarts a process that exits (with back-off) instead of stopping them all.
	PATH="$(CURDIR)/$(BIN):$$PATH" DEBUG=$${DEBUG:-true} SITE_URL=$${SITE_URL:-http://127.0.0.1:$(PORT)} \
		$(BIN)/python deploy/supervise.py Procfile.dev

## make run-prod: the production shape on one machine (nginx with HTTPS -> two gunicorn -> PostgreSQL
## + Redis, two Celery workers, two beats) under the supervisor; needs DATABASE_URL and REDIS_URL.
## What it does and the variables it reads: deploy/run_prod.py and README "Production".
run-prod: install
	$(BIN)/python deploy/run_prod.py

## make test: set up, lint, check migrations, run the whole suite.
test: install lint migrations-check
	$(BIN)/pytest

test-fast: install
	$(BIN)/pytest -m "not browser and not integration"

test-browser: install
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
## prints a Markdown table and writes bench/results/latest.json. About 10 minutes on 2 cores.
bench: install
	$(BIN)/python -m bench.run

## make loadtest: 50 patients asking for 60 s against gunicorn on PostgreSQL (issue 7).
loadtest: install
	$(BIN)/python -m bench.loadtest

clean:
	rm -rf $(VENV) var db.sqlite3 staticfiles
