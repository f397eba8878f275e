# Browser editor: npm packages from the committed lock file, bundled by esbuild into src/static/dist.
.PHONY: ui test-browser
ui:
	@echo "(browser editor not built yet)"

test-browser:
	@echo "(no browser tests yet)"
