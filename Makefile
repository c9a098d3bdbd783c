# Two commands for a fresh machine (see README.md):
#   make book   set up .venv if needed, build the website into _build/html
#   make test   set up .venv if needed, run every test
# A second run on a ready machine skips the set-up (the stamp file below).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bertedu-installed
D2L := d2l==1.0.3
PORT ?= 8000

.PHONY: book test serve setup clean-book benchmark browser exercises

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps $(D2L)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

book: $(STAMP)
	$(BIN)/jupyter-book build . -W --keep-going
	@echo
	@echo "The book is in _build/html. Open _build/html/index.html in a browser,"
	@echo "or serve it with: make serve   (then visit http://localhost:$(PORT))"

serve:
	$(BIN)/python -m http.server $(PORT) --directory _build/html

# Headless Chromium for tests/test_website.py, from Debian's packages (root in CI; sudo
# elsewhere). Installed by `make test` when CI is set; locally, run `make browser` once,
# or the browser test skips with a message.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

# One pytest-xdist worker per core (at most 4: each chapter holds a model or two in memory);
# conftest.py keeps each file and notebook whole on one worker and gives it one thread.
test: $(STAMP)
	@if [ -n "$$CI" ]; then $(MAKE) --no-print-directory browser; fi
	$(BIN)/python -m pytest -n auto --maxprocesses=4

# The student versions of the exercises (no solutions) in exercises/release/; see book/instructors.md
exercises: $(STAMP)
	cd exercises && ../$(BIN)/python -m nbgrader generate_assignment "*" --no-db --force

benchmark: $(STAMP)
	$(BIN)/python benchmarks/model_speed.py

clean-book:
	rm -rf _build
