# docs.mk — manual pages and shell completion scripts, generated from the
# command tree by tools/gendocs (cobra's doc package) into builddir/docs:
# man1/launch.1, launch-exec.1, … and completion/launch.bash, _launch (zsh),
# launch.fish. `make install` puts them where man, bash-completion, zsh and
# fish look under $(PREFIX)/share.

DOCS_DIR   := $(BUILDDIR)/docs
DOCS_STAMP := $(DOCS_DIR)/.stamp

MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

.PHONY: docs
docs: $(DOCS_STAMP)

$(BUILDDIR)/gendocs: $(GO_SOURCES) $(shell find tools -name '*.go' ! -name '*_test.go' 2>/dev/null) $(LDFLAGS_STAMP)
	@test -x "$(GO)" || { echo "Go not found (looked on PATH and at /usr/local/go/bin/go); get it from https://go.dev/dl/" >&2; exit 1; }
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags '$(GO_LDFLAGS)' -o $@ ./tools/gendocs

# The pages are written afresh (a removed command leaves no stale page).
$(DOCS_STAMP): $(BUILDDIR)/gendocs
	rm -rf $(DOCS_DIR)
	$(BUILDDIR)/gendocs -version '$(VERSION)' $(DOCS_DIR)
	@touch $@

.PHONY: install-docs
install-docs: $(DOCS_STAMP)
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0644 $(DOCS_DIR)/man1/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(DOCS_DIR)/completion/launch.bash $(DESTDIR)$(BASHCOMPDIR)/launch
	install -m 0644 $(DOCS_DIR)/completion/_launch $(DESTDIR)$(ZSHCOMPDIR)/_launch
	install -m 0644 $(DOCS_DIR)/completion/launch.fish $(DESTDIR)$(FISHCOMPDIR)/launch.fish

.PHONY: uninstall-docs
uninstall-docs:
	rm -f $(DESTDIR)$(MANDIR)/man1/launch.1 $(DESTDIR)$(MANDIR)/man1/launch-*.1 \
		$(DESTDIR)$(BASHCOMPDIR)/launch $(DESTDIR)$(ZSHCOMPDIR)/_launch $(DESTDIR)$(FISHCOMPDIR)/launch.fish
