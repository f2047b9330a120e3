# build.mk — builddir/launch and its helper builddir/launch-oci (pull, cache,
# build from OCI sources; kept apart so that their libraries' start-up cost is
# not paid by every `launch exec`), static binaries with build values stamped in.

BUILDINFO   := github.com/launch-hpc/launch/internal/buildinfo
CGO_ENABLED ?= 0
# -buildvcs=false: Commit is stamped below, and git's "dubious ownership"
# check would otherwise fail builds of a checkout owned by another user.
GOBUILDFLAGS ?= -trimpath -buildvcs=false
GO_LDFLAGS  := -X $(BUILDINFO).Version=$(VERSION) \
               -X $(BUILDINFO).Commit=$(COMMIT) \
               -X $(BUILDINFO).Prefix=$(PREFIX) \
               -X $(BUILDINFO).SysconfDir=$(SYSCONFDIR)

# What the binary is made of: non-test Go files outside e2e/, plus the module files.
GO_SOURCES := $(shell find cmd internal -name '*.go' ! -name '*_test.go' 2>/dev/null) go.mod go.sum

# The stamped values live in a file that is rewritten only when they change,
# so the binary is relinked after `make install PREFIX=/other` or a new
# commit, and not otherwise.
LDFLAGS_STAMP := $(BUILDDIR)/.ldflags

.PHONY: all
all: $(BUILDDIR)/launch $(BUILDDIR)/launch-oci

$(BUILDDIR)/launch $(BUILDDIR)/launch-oci: $(BUILDDIR)/%: $(GO_SOURCES) $(LDFLAGS_STAMP)
	@test -x "$(GO)" || { echo "Go not found (looked on PATH and at /usr/local/go/bin/go); get it from https://go.dev/dl/" >&2; exit 1; }
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build $(GOBUILDFLAGS) -ldflags '$(GO_LDFLAGS)' -o $@ ./cmd/$*

$(LDFLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(GO_LDFLAGS)' | cmp -s - $@ || echo '$(GO_LDFLAGS)' > $@

.PHONY: FORCE
FORCE:

.PHONY: clean
clean:
	rm -rf $(BUILDDIR)

.PHONY: help
help:
	@sed -n '3,9s/^# \{0,1\}//p' Makefile
