# Browser editor: npm packages from the committed lock file, bundled by esbuild into src/static/dist (app.js,
# app.css, and chunks loaded on first use: the code editor with CodeMirror, auto-layout with dagre).
# `make ui` is quick when nothing changed: npm ci runs only when the lock file is newer than the last
# install, and esbuild only when a source file is newer than the bundle.
.PHONY: ui test-browser

UI_DIR := src/static
UI_INSTALLED := $(UI_DIR)/node_modules/.pyflow-installed
UI_SOURCES := $(wildcard $(UI_DIR)/js/*.js $(UI_DIR)/css/*.css) $(UI_DIR)/build.mjs $(UI_DIR)/index.html
UI_BUNDLE := $(UI_DIR)/dist/app.js

ui: $(UI_BUNDLE)

$(UI_INSTALLED): $(UI_DIR)/package.json $(UI_DIR)/package-lock.json
	cd $(UI_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(UI_BUNDLE): $(UI_INSTALLED) $(UI_SOURCES)
	cd $(UI_DIR) && node build.mjs
	touch $@

# Real-browser tests: Playwright for Python driving Debian's chromium (never a downloaded browser).
test-browser: system-deps venv ui
	@[ -x /usr/bin/chromium ] || { echo "installing chromium"; $(APT) update -qq && $(APT) install $(TEST_SYSTEM_PACKAGES); } \
	  || { echo "SKIPPED test-browser: chromium could not be installed (apt-get failed, output above)"; exit 0; }; \
	[ -x /usr/bin/chromium ] || { echo "SKIPPED test-browser: /usr/bin/chromium is missing after the install"; exit 0; }; \
	$(PY) -m pytest tests/browser -q -p no:cacheprovider
