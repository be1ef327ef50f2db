# Life is Artificial: podcast production pipeline.
# `make episode` and `make test` set up everything they need (Debian packages and a
# virtual environment) and are quick to re-run when nothing changed.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SCRIPT ?= script/episode.md
EPISODE ?= build/episode.mp3
# Swap voices for one render: make episode VOICES="MAYA=voices/slt.yaml ALEX=voices/heart.yaml"
VOICES ?=
VOICE_FLAGS := $(foreach voice,$(VOICES),--voice $(voice))
# Debian packages: ffmpeg encodes and measures. An engine's own packages are installed only
# when a voice in use needs them (Piper and hibari come from PyPI).
APT_PACKAGES := ffmpeg
FESTIVAL_PACKAGES := festival festvox-us-slt-hts
# Only `make music` needs a synthesizer: the rendered music is committed.
MUSIC_PACKAGES := fluidsynth fluid-soundfont-gm
# `make serve` runs nginx; the tests also start sshd and drive Chromium.
SERVE_PACKAGES := nginx
# `make promo` burns captions into the audiogram with libass (in ffmpeg) and this font.
PROMO_PACKAGES := fonts-dejavu-core
TEST_PACKAGES := $(FESTIVAL_PACKAGES) $(MUSIC_PACKAGES) $(SERVE_PACKAGES) $(PROMO_PACKAGES) \
	openssh-server openssh-client chromium
SHOW ?= podcast.yaml
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup apt apt-install engines episode watch check qa test test-fast lint format clean music cover models references publish serve bench promo

help:
	@echo "make episode   render $(SCRIPT) to $(EPISODE) (sets up first);"
	@echo "               VOICES=\"MAYA=voices/slt.yaml\" swaps a host's voice for this render"
	@echo "make watch     render $(SCRIPT) again on every save, voices kept loaded (Ctrl-C stops)"
	@echo "make test      run the test suite (sets up first)"
	@echo "make test-fast the tests that need no torch, servers, browser or long renders"
	@echo "make check     validate the script, voices and figures without rendering"
	@echo "make qa        speech-recognition QA of the rendered episode (build/qa.md)"
	@echo "make bench     speed and memory of a cold, an edited and an unchanged render"
	@echo "make publish   build the podcast site and deliver it (podcast.yaml's target)"
	@echo "make serve     serve build/site on http://127.0.0.1:$(PORT)/ (nginx)"
	@echo "make promo     the soundbite as a square audiogram video (build/episode-audiogram.mp4)"
	@echo "make music     compose and render assets/music/ again (FluidSynth)"
	@echo "make cover     draw assets/cover.jpg again"
	@echo "make models    download the Coqui models and hibari voices the voices name (network)"
	@echo "make references  speak voices/<host>-reference.wav again (clips for cloning)"
	@echo "make lint      ruff"
	@echo "make clean     remove build/ (keeps .venv)"

setup: apt $(VENV)/.installed

# Installs only what is missing; `apt-get update` runs only then.
apt:
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(APT_PACKAGES)"

apt-install:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The Coqui engine's packages (several GB): for the tests, and for renders whose voices use it.
$(VENV)/.coqui: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,coqui]'
	touch $@

# Ray, for renders that hand synthesis to a cluster (--executor ray) and for the tests.
$(VENV)/.ray: $(VENV)/.installed
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
	touch $@

# The engines the script's voices use, with their packages; then the check (script, voices,
# and every figure against the fact sheet); then the render.
engines: setup
	@engines="$$($(PY) -m pipeline engines $(SCRIPT) $(VOICE_FLAGS))" || exit 1; \
	if echo "$$engines" | grep -qx festival; then \
	  $(MAKE) --no-print-directory apt-install PACKAGES="$(FESTIVAL_PACKAGES)"; fi; \
	if echo "$$engines" | grep -qx coqui; then \
	  $(MAKE) --no-print-directory $(VENV)/.coqui; fi

episode: engines
	$(PY) -m pipeline check $(SCRIPT) $(VOICE_FLAGS)
	$(PY) -m pipeline render $(SCRIPT) -o $(EPISODE) $(VOICE_FLAGS)

watch: engines
	$(PY) -m pipeline render --watch $(SCRIPT) -o $(EPISODE) $(VOICE_FLAGS)

# QA reports; it renders first only if there is no episode yet, and never fails on scores.
qa: setup
	@[ -f $(EPISODE) ] || $(MAKE) --no-print-directory episode
	$(PY) -m pipeline qa $(SCRIPT) -i $(EPISODE)

check: engines
	$(PY) -m pipeline check $(SCRIPT) $(VOICE_FLAGS)

# The tests also compose the music, so they need the synthesizer too.
# The S3-compatible test server, from npm.
$(VENV)/npm/.installed:
	npm install --silent --no-audit --no-fund --prefix $(VENV)/npm s3rver@3.7.1
	touch $@

test: setup $(VENV)/.coqui $(VENV)/.ray $(VENV)/npm/.installed
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(TEST_PACKAGES)"
	$(PY) -m pytest -q

# The quick tier for the edit loop: no torch, no test servers, no browser, no long renders
# (pyproject.toml's markers). `make test` runs everything, as CI does.
test-fast: setup
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(FESTIVAL_PACKAGES) $(MUSIC_PACKAGES)"
	$(PY) -m pytest -q -n auto --dist loadfile -m "not torch and not servers and not browser and not slow"

lint: setup
	$(PY) -m ruff check pipeline tests
	$(PY) -m ruff format --check pipeline tests

format: setup
	$(PY) -m ruff format pipeline tests
	$(PY) -m ruff check --fix pipeline tests

# Build the site from the rendered episode and deliver it (podcast.yaml's target).
publish: setup
	@[ -f $(EPISODE) ] || $(MAKE) --no-print-directory episode
	$(PY) -m pipeline publish --show $(SHOW) --script $(SCRIPT) --episode $(EPISODE)

# The promotion kit: the soundbite as an audiogram, which publishing then links.
promo: setup
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(PROMO_PACKAGES)"
	@[ -f $(EPISODE) ] || $(MAKE) --no-print-directory episode
	$(PY) -m pipeline promo $(SCRIPT) -i $(EPISODE)

# Serve the built site on http://127.0.0.1:$(PORT)/ with nginx (HTTP Range requests work).
serve: setup
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(SERVE_PACKAGES)"
	@[ -f build/site/index.html ] || $(MAKE) --no-print-directory publish
	$(PY) -m pipeline.serve build/site --port $(PORT)

# Render the real episode cold, after a one-line edit and unchanged; time the raw engines.
bench: engines
	$(PY) -m pipeline.bench $(SCRIPT) --out build/bench.json --readme README.md

# Fetch the Coqui models and hibari voices the script's voices name (needs the network;
# once per machine).
models: setup $(VENV)/.coqui
	$(PY) -m pipeline models $(SCRIPT) $(VOICE_FLAGS)

music: $(VENV)/.installed
	@$(MAKE) --no-print-directory apt-install PACKAGES="$(MUSIC_PACKAGES)"
	$(PY) -m pipeline.compose assets/music

references: engines
	$(PY) -m pipeline.reference $(SCRIPT) voices

cover: $(VENV)/.installed
	$(PY) -m pipeline.cover assets/cover.jpg

clean:
	rm -rf build
