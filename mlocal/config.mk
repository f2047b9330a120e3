# config.mk — variables every other fragment uses. Override any of them on the
# command line: make PREFIX=/opt/launch SYSCONFDIR=/etc GO=/path/to/go

SHELL := /bin/bash

# Go: the one on PATH, else the usual tarball location.
GO ?= $(or $(shell command -v go 2>/dev/null),/usr/local/go/bin/go)

# Installation layout. PREFIX and SYSCONFDIR are also stamped into the binary,
# so launch finds $(SYSCONFDIR)/launch/launch.conf at run time; DESTDIR is not.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
SYSCONFDIR ?= $(PREFIX)/etc
DESTDIR    ?=

BUILDDIR := builddir

# Version: git describe, else 0.0.0-dev (e.g. a tarball without .git).
VERSION ?= $(or $(shell git describe --tags --always --dirty 2>/dev/null),0.0.0-dev)
COMMIT  ?= $(or $(shell git rev-parse HEAD 2>/dev/null),unknown)
