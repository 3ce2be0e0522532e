# Two commands on a fresh machine: `make lab` opens the course, `make test` runs every test.
# Both install what is missing first (a .venv with the pinned stack, course_lib editable, the
# Jupyter kernel, the system tools the offline data needs) and skip what is already there.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.course-installed
UV       := $(VENV)/bin/uv
KERNEL   := audio-nn-course
# The CI profile: offline data, CPU only, small budgets; failing exercise checks raise.
# Checkpoints of test runs go to a folder each `make test` empties first: a rerun that resumed the
# last run's checkpoints would pass without training (and report a notebook time that means nothing).
TEST_CKPT := $(CURDIR)/.make/checkpoints
# Tests and notebooks run on every core (pytest-xdist), each worker on one thread (the ci profile's,
# and COURSE_THREADS=1 in the laptop run): a notebook is one unit of work, so its cells share a kernel
# (conftest.py). PARALLEL= (empty) runs everything in one process, e.g. to time notebooks alone.
PARALLEL ?= -n auto --dist loadscope
CI_ENV   := COURSE_PROFILE=ci COURSE_STRICT_CHECKS=1 MPLBACKEND=Agg PYTHONHASHSEED=0
CI_NOTEBOOK_ENV := $(CI_ENV) COURSE_CHECKPOINTS=$(TEST_CKPT)/ci
# The ci phase records each solution notebook with its outputs (conftest.py); `make book` renders them.
EXECUTED := $(CURDIR)/.make/executed
BOOK     := $(CURDIR)/.make/book
BOOK_BUILD := $(PY) tools/book.py --executed $(EXECUTED) --out $(BOOK) --check
# JupyterLab from .venv in headless Chromium (Debian's chromium + chromium-driver, installed with apt
# when missing and run as root): 00_welcome and the STFT widget notebook open with the course kernel
# and run, the slider redraws its plot, the audio players load. Screenshots and the log: .make/browser/.
BROWSER_CHECK := $(PY) tools/browser_check.py --install-system-packages --out .make/browser
# The laptop profile on miniature copies of the real datasets' layouts, served on 127.0.0.1 by
# `course_lib.data miniature --run` (docs/DEVELOPING.md, "Miniature datasets"). COURSE_BUDGET (tests
# only) sizes the run for the fixtures: all of each small training split, 8 epochs (enough for every
# notebook's learning check to pass with a margin), batches of 16, at most 240 clips of an offline set.
# One thread: on a shared 2-core machine two threads measured 1.2-5x slower (oversubscription).
LAPTOP_ENV := COURSE_PROFILE=laptop COURSE_STRICT_CHECKS=1 MPLBACKEND=Agg PYTHONHASHSEED=0 COURSE_THREADS=1 \
	COURSE_CHECKPOINTS=$(TEST_CKPT)/laptop \
	COURSE_BUDGET=epochs=8,data_fraction=1.0,max_clips=240,batch_size=16
# The laptop phase runs the student copies (exercises unsolved, hints instead of errors): what a
# student without a GPU opens. The ci phase runs the solutions, so each notebook runs once per phase.
LAPTOP_NOTEBOOKS := $(LAPTOP_ENV) $(PY) -m course_lib.data miniature --run \
	$(PY) -m pytest tests/test_student_copies.py $(PARALLEL) -p no:cacheprovider
STUDENT_COPIES := --ignore=tests/test_student_copies.py

.PHONY: help install system-packages data lab test book test-browser grade test-unit test-notebooks notebooks check-notebooks strip bench clean-venv doctor lock test-py312 test-device

help:
	@echo "make lab        install what is missing, prepare offline data, open JupyterLab"
	@echo "make test       install what is missing, then run unit tests and every solution notebook (CI profile)"
	@echo "make test-browser JupyterLab in headless Chromium: kernel, setup cell, widget slider, audio; screenshots in .make/browser/ (part of make test)"
	@echo "make grade DIR=submissions  grade a folder of student notebooks (docs/INSTRUCTORS.md): grades.csv + report"
	@echo "make book       the course as a searchable static site from the executed solutions (.make/book/html)"
	@echo "make notebooks  regenerate the student copies in notebooks/ from solutions/"
	@echo "make strip      strip outputs from solutions/ before committing"
	@echo "make bench      input-pipeline benchmark (ratio against a naive loader)"
	@echo "make test-laptop every student copy (exercises unsolved) in the laptop profile on miniature real-dataset layouts (part of make test)"
	@echo "make lock       rewrite requirements.lock from pyproject.toml (UPGRADE=1 or UPGRADE=pkg to move versions)"
	@echo "make test-py312 Python 3.12 + Colab's install path (torch kept), unit tests there (part of make test)"
	@echo "make test-device every notebook + the benchmark on CUDA/MPS, as a table (refuses without one)"
	@echo "make doctor     first-day check: versions vs the lock, device, system tools by use, data cache; each fix"

# The virtual environment holds exactly requirements.lock (every package, transitive ones too),
# installed by uv, itself pinned in the lock and installed by the venv's own pip: `uv pip sync`
# adds, changes and removes packages until the environment equals the lock. It is redone when the
# lock or the package metadata change. uv reads UV_INDEX_URL / UV_DEFAULT_INDEX, not pip.conf.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "The course needs Python >= 3.11 as '$(PYTHON)' (found: $$($(PYTHON) --version 2>&1))."; \
		echo "Install one, or point make at it: make test PYTHON=python3.12"; exit 1; }
	@$(PYTHON) -m venv $(VENV) || { \
		echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }

$(UV): | $(PY)
	@pin=$$(grep -m1 '^uv==' requirements.lock) || { \
		echo "requirements.lock pins no uv: restore it (git checkout requirements.lock)"; exit 1; }; \
	$(PY) -m pip install --quiet "$$pin"

$(STAMP): requirements.lock pyproject.toml | $(UV)
	$(UV) pip sync --quiet --python $(PY) requirements.lock
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 ($(KERNEL))" >/dev/null
	@touch $(STAMP)

# requirements.lock from pyproject.toml's ranges and the dev extra, for every platform (markers).
# Versions already locked are kept; UPGRADE=1 moves every package to the newest its range allows,
# UPGRADE="numpy scipy" only those. Then `make test`, and commit the lock with environment.yml.
lock: | $(UV)
	$(UV) pip compile --quiet pyproject.toml --extra dev --universal --custom-compile-command "make lock" \
		$(if $(filter 1,$(UPGRADE)),--upgrade,$(foreach p,$(UPGRADE),--upgrade-package $(p))) \
		-o requirements.lock
	$(PY) -m course_lib.lockfile environment-yml

install: $(STAMP) system-packages

# espeak-ng, flite, festival, fluidsynth and a GM sound font build the offline data sets.
system-packages: $(STAMP)
	@$(PY) -m course_lib.data system-packages --install || [ "$(MAKECMDGOALS)" = lab ]

data: install
	$(PY) -m course_lib.data prepare

# The lab opens even where the offline sets cannot be built (no apt, no root): the notebooks then
# use the real datasets, downloading them when they can.
lab: install
	-$(PY) -m course_lib.data prepare
	@root_flag=""; [ "$$(id -u)" = 0 ] && root_flag="--allow-root"; \
	$(VENV)/bin/jupyter lab $$root_flag --notebook-dir=. notebooks/00_welcome.ipynb

test: install
	rm -rf $(TEST_CKPT) $(EXECUTED)
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(CI_NOTEBOOK_ENV) COURSE_EXECUTED_NOTEBOOKS=$(EXECUTED) $(PY) -m pytest tests solutions $(STUDENT_COPIES) $(PARALLEL) --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider
	$(BOOK_BUILD)
	$(LAPTOP_NOTEBOOKS)
	$(PY) tools/check_colab_install.py --skip-without-python
	$(BROWSER_CHECK)

test-unit: install
	$(CI_ENV) $(PY) -m pytest tests $(STUDENT_COPIES) $(PARALLEL) -p no:cacheprovider

# Every student copy in the laptop profile against the miniature real-dataset layouts: catches what
# the ci profile cannot (real class names, clip lengths, sample rates, folds and split files), and
# that a copy with its exercises unsolved runs to the end with hints.
.PHONY: test-laptop
test-laptop: install
	rm -rf $(TEST_CKPT)/laptop
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(LAPTOP_NOTEBOOKS)

test-notebooks: install
	rm -rf $(TEST_CKPT)/ci
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(CI_NOTEBOOK_ENV) $(PY) -m pytest solutions $(PARALLEL) --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

# Grade a folder of submitted notebooks (docs/INSTRUCTORS.md): make grade DIR=submissions [OUT=grades.csv] [JOBS=1]
grade: install
	@test -n "$(DIR)" || { echo "usage: make grade DIR=<folder of submissions> [OUT=grades.csv] [JOBS=1]"; exit 2; }
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(PY) -m course_lib.grade "$(DIR)" --out "$(or $(OUT),grades.csv)" --jobs $(or $(JOBS),1)

test-browser: install
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(BROWSER_CHECK)

# The course as a searchable static site (.make/book/html/index.html): every solution run in the ci
# profile (as in make test), recorded with its outputs, rendered by Sphinx + myst-nb, then checked.
book: install
	rm -rf $(TEST_CKPT)/ci $(EXECUTED)
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(CI_NOTEBOOK_ENV) COURSE_EXECUTED_NOTEBOOKS=$(EXECUTED) $(PY) -m pytest solutions $(PARALLEL) --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider
	$(BOOK_BUILD)

notebooks: $(STAMP)
	$(PY) -m course_lib.assignments fix-setup
	$(PY) -m course_lib.assignments build

check-notebooks: $(STAMP)
	$(PY) -m course_lib.assignments check

strip: $(STAMP)
	$(PY) -m course_lib.assignments strip

bench: data
	$(PY) -m course_lib.bench train

# Python 3.12 and Colab's install path: pip installs course-lib (pyproject's ranges) into a Python 3.12
# venv that already holds torch, must keep that torch, and the unit tests then pass against the
# installed copy. .venv-py312 is kept, and rebuilt when the lock or pyproject.toml change.
test-py312: $(STAMP)
	$(PY) tools/check_colab_install.py

# Every solution notebook in the ci profile and `make bench`, on CUDA (else MPS), as one table.
# Without an accelerator it says so and fails before installing or running anything else.
test-device: $(STAMP)
	$(PY) -m course_lib.devicecheck --preflight
	@$(MAKE) --no-print-directory install
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(PY) -m course_lib.devicecheck

clean-venv:
	rm -rf $(VENV)

# Diagnoses without installing anything (a broken install is what it is for): the course's .venv
# when there is one, else the system Python, which then reports what is missing.
doctor:
	@if [ -x $(PY) ]; then $(PY) -m course_lib doctor; else \
		echo "no $(VENV) yet ('make install' creates it); checking with $(PYTHON)"; \
		PYTHONPATH=. $(PYTHON) -m course_lib doctor; fi
