# Two commands on a fresh machine: `make lab` opens the course, `make test` runs every test.
# Both install what is missing first (a .venv with the pinned stack, course_lib editable, the
# Jupyter kernel, the system tools the offline data needs) and skip what is already there.

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
STAMP    := $(VENV)/.course-installed
KERNEL   := audio-nn-course
# The CI profile: offline data, CPU only, small budgets; failing exercise checks raise.
CI_ENV   := COURSE_PROFILE=ci COURSE_STRICT_CHECKS=1 MPLBACKEND=Agg PYTHONHASHSEED=0

.PHONY: help install system-packages data lab test test-unit test-notebooks notebooks check-notebooks strip bench clean-venv

help:
	@echo "make lab        install what is missing, prepare offline data, open JupyterLab"
	@echo "make test       install what is missing, then run unit tests and every solution notebook (CI profile)"
	@echo "make notebooks  regenerate the student copies in notebooks/ from solutions/"
	@echo "make strip      strip outputs from solutions/ before committing"
	@echo "make bench      input-pipeline benchmark (ratio against a naive loader)"

# The virtual environment is rebuilt when the pins or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || { \
		echo "The course needs Python >= 3.10 as '$(PYTHON)' (found: $$($(PYTHON) --version 2>&1))."; \
		echo "Install one, or point make at it: make test PYTHON=python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { \
		echo "Could not create $(VENV). On Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python 3 ($(KERNEL))" >/dev/null
	@touch $(STAMP)

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
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(CI_ENV) $(PY) -m pytest tests solutions --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

test-unit: install
	$(CI_ENV) $(PY) -m pytest tests -p no:cacheprovider

test-notebooks: install
	$(CI_ENV) $(PY) -m course_lib.data prepare
	$(CI_ENV) $(PY) -m pytest solutions --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider

notebooks: $(STAMP)
	$(PY) -m course_lib.assignments fix-setup
	$(PY) -m course_lib.assignments build

check-notebooks: $(STAMP)
	$(PY) -m course_lib.assignments check

strip: $(STAMP)
	$(PY) -m course_lib.assignments strip

bench: data
	$(PY) -m course_lib.bench train

clean-venv:
	rm -rf $(VENV)
