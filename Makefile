# launch — rootless, daemonless SIF container launcher. See README.md.
#
#   make                    build builddir/launch (only when Go sources or stamped values change)
#   make test               scripts/test: deps, build, vet, unit tests, e2e as you (and as an
#                           unprivileged user when run as root), leak check
#   make demo               scripts/demo: build a busybox SIF and run it
#   make install            PREFIX=/usr/local SYSCONFDIR=$(PREFIX)/etc DESTDIR=
#                           (binaries, launch.conf, man pages, bash/zsh/fish completion)
#   make docs               builddir/docs: man pages and completion scripts
#   make uninstall | clean | help
#
# The pieces live in mlocal/*.mk.

.DEFAULT_GOAL := all

include mlocal/config.mk
include mlocal/build.mk
include mlocal/docs.mk
include mlocal/test.mk
include mlocal/install.mk
include mlocal/bench.mk
