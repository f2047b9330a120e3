# test.mk — the test and demo entry points. The scripts do the work (they
# install missing packages when run as root, build, and clean up after
# themselves); see their headers for options.

.PHONY: test test-unit test-e2e demo deps
test:
	scripts/test
test-unit:
	scripts/test --unit
test-e2e:
	scripts/test --e2e
demo:
	scripts/demo
deps:
	scripts/install-deps
