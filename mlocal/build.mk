# build.mk — builddir/launch and its helper programs (HELPERS: launch-oci, launch-cdi,
# launch-sign, launch-squashfs; kept apart so that their libraries' start-up cost is
# not paid by every `launch exec`), static binaries with build values stamped in.
#
# launch is built with cgo when a C compiler is there: internal/preinit's
# constructor makes the container's namespaces before the Go runtime starts,
# which saves a second process start on every launch. It is linked
# statically (glibc's libc.a, from libc6-dev), with the pure-Go resolver and
# user lookup (netgo, osusergo), so the binary still runs anywhere. Without a
# C compiler, `make` builds without cgo and says so: launch then re-executes
# itself for every container, slower but otherwise the same. The same
# happens when the C library cannot be linked statically (no libc.a).
# launch-oci never needs cgo.

BUILDINFO   := github.com/launch-hpc/launch/internal/buildinfo
CC          ?= cc
# cgo only when the compiler can link statically: it must find libc.a
# (Debian: libc6-dev; RHEL family: glibc-static).
LAUNCH_CGO  ?= $(if $(filter /%,$(shell command -v $(CC) >/dev/null 2>&1 && $(CC) -print-file-name=libc.a 2>/dev/null)),1,0)
# -buildvcs=false: Commit is stamped below, and git's "dubious ownership"
# check would otherwise fail builds of a checkout owned by another user.
GOBUILDFLAGS ?= -trimpath -buildvcs=false
GO_LDFLAGS  := -X $(BUILDINFO).Version=$(VERSION) \
               -X $(BUILDINFO).Commit=$(COMMIT) \
               -X $(BUILDINFO).Prefix=$(PREFIX) \
               -X $(BUILDINFO).SysconfDir=$(SYSCONFDIR)
CGO_LDFLAGS_STATIC := -linkmode external -extldflags -static

# What the binaries are made of: non-test Go and C files outside e2e/, plus
# the module files.
GO_SOURCES := $(shell find cmd internal \( -name '*.go' -o -name '*.c' -o -name '*.h' \) ! -name '*_test.go' 2>/dev/null) go.mod go.sum

# The stamped values live in a file that is rewritten only when they change,
# so the binary is relinked after `make install PREFIX=/other` or a new
# commit, and not otherwise.
LDFLAGS_STAMP := $(BUILDDIR)/.ldflags

# The helper programs: each holds libraries the start of every container must
# not pay for (launch-oci: registries and layers; launch-cdi: the CDI library;
# launch-sign: OpenPGP, x509, sigstore). internal/helper finds them.
GO_HELPERS := launch-oci launch-cdi launch-sign
# launch-squashfs, launch's SquashFS server, is built with cgo and libdeflate
# (linked statically, like launch) when the compiler finds libdeflate.a
# (Debian: libdeflate-dev; RHEL family: libdeflate-devel from EPEL, which has
# no static library: then it is built without), else with Go's own zlib,
# about 3.5 times slower to decompress gzip images.
HELPERS := $(GO_HELPERS) launch-squashfs
LIBDEFLATE_A := $(if $(filter 1,$(LAUNCH_CGO)),$(filter /%,$(shell $(CC) -print-file-name=libdeflate.a 2>/dev/null)))

.PHONY: all
all: $(BUILDDIR)/launch $(addprefix $(BUILDDIR)/,$(HELPERS)) $(DOCS_STAMP)

$(BUILDDIR)/launch: $(GO_SOURCES) $(LDFLAGS_STAMP)
	@test -x "$(GO)" || { echo "Go not found (looked on PATH and at /usr/local/go/bin/go); get it from https://go.dev/dl/" >&2; exit 1; }
ifeq ($(LAUNCH_CGO),1)
	CGO_ENABLED=1 CC=$(CC) $(GO) build $(GOBUILDFLAGS) -tags netgo,osusergo -ldflags '$(GO_LDFLAGS) $(CGO_LDFLAGS_STATIC)' -o $@ ./cmd/launch
else
	@echo "make: no C compiler ($(CC)) with a static C library: building launch without cgo, so without its fast start (apt-get install gcc libc6-dev; dnf install gcc glibc-static)" >&2
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags '$(GO_LDFLAGS)' -o $@ ./cmd/launch
endif

$(addprefix $(BUILDDIR)/,$(GO_HELPERS)): $(BUILDDIR)/%: $(GO_SOURCES) $(LDFLAGS_STAMP)
	@test -x "$(GO)" || { echo "Go not found (looked on PATH and at /usr/local/go/bin/go); get it from https://go.dev/dl/" >&2; exit 1; }
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags '$(GO_LDFLAGS)' -o $@ ./cmd/$*

$(BUILDDIR)/launch-squashfs: $(GO_SOURCES) $(LDFLAGS_STAMP)
	@test -x "$(GO)" || { echo "Go not found (looked on PATH and at /usr/local/go/bin/go); get it from https://go.dev/dl/" >&2; exit 1; }
ifneq ($(LIBDEFLATE_A),)
	CGO_ENABLED=1 CC=$(CC) $(GO) build $(GOBUILDFLAGS) -tags netgo,osusergo,libdeflate -ldflags '$(GO_LDFLAGS) $(CGO_LDFLAGS_STATIC)' -o $@ ./cmd/launch-squashfs
else
	@echo "make: no static libdeflate (libdeflate.a): building launch-squashfs with Go's zlib, slower on gzip images (apt-get install libdeflate-dev)" >&2
	CGO_ENABLED=0 $(GO) build $(GOBUILDFLAGS) -ldflags '$(GO_LDFLAGS)' -o $@ ./cmd/launch-squashfs
endif

$(LDFLAGS_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(GO_LDFLAGS)' | cmp -s - $@ || echo '$(GO_LDFLAGS)' > $@

.PHONY: print-helpers
print-helpers: ; @echo $(HELPERS)

.PHONY: FORCE
FORCE:

.PHONY: clean
clean:
	rm -rf $(BUILDDIR)

.PHONY: help
help:
	@sed -n '3,9s/^# \{0,1\}//p' Makefile
