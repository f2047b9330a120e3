# install.mk — install/uninstall. An existing launch.conf is never
# overwritten: the new default goes next to it as launch.conf.new.

CONF_SRC := etc/launch/launch.conf
CONF_DIR := $(DESTDIR)$(SYSCONFDIR)/launch
CONF     := $(CONF_DIR)/launch.conf
# run-singularity, and the line that marks it as launch's.
RUNSIF      := $(DESTDIR)$(BINDIR)/run-singularity
RUNSIF_MARK := run-singularity of launch
# The GPU library lists (--nv, --rocm), kept like launch.conf when edited.
LISTS    := nvliblist.conf rocmliblist.conf

.PHONY: install
install: $(BUILDDIR)/launch $(addprefix $(BUILDDIR)/,$(HELPERS)) install-docs
	install -d $(DESTDIR)$(BINDIR) $(CONF_DIR) $(DESTDIR)$(PREFIX)/libexec/launch
	install -m 0755 $(BUILDDIR)/launch $(DESTDIR)$(BINDIR)/launch
	install -m 0755 $(addprefix $(BUILDDIR)/,$(HELPERS)) $(DESTDIR)$(PREFIX)/libexec/launch/
	@# run-singularity: what an executable SIF's first line (#!/usr/bin/env
	@# run-singularity) runs, as Apptainer ships it; one of Apptainer's in
	@# the same place is kept.
	@if [ -e '$(RUNSIF)' ] && ! grep -q '$(RUNSIF_MARK)' '$(RUNSIF)'; then \
		echo "NOTE: $(RUNSIF) exists and is not launch's: kept (executable SIFs run with what it runs)"; \
	else \
		echo "install -m 0755 run-singularity $(RUNSIF)"; \
		printf '%s\n' '#!/bin/sh' '# $(RUNSIF_MARK): runs an executable SIF (./app.sif ARGS) as `launch run`.' \
			'd=$${0%/*}' '[ -x "$$d/launch" ] && exec "$$d/launch" -q run "$$@"' 'exec launch -q run "$$@"' >'$(RUNSIF)'; \
		chmod 0755 '$(RUNSIF)'; \
	fi
	@for f in $(LISTS); do \
		if [ ! -e "$(CONF_DIR)/$$f" ]; then \
			echo "install -m 0644 etc/launch/$$f $(CONF_DIR)/$$f"; install -m 0644 etc/launch/$$f "$(CONF_DIR)/$$f"; \
		elif ! cmp -s etc/launch/$$f "$(CONF_DIR)/$$f"; then \
			install -m 0644 etc/launch/$$f "$(CONF_DIR)/$$f.new"; \
			echo "NOTE: $(CONF_DIR)/$$f exists and was kept; the shipped default is in $$f.new"; \
		fi; \
	done
	@if [ ! -e '$(CONF)' ]; then \
		echo "install -m 0644 $(CONF_SRC) $(CONF)"; \
		install -m 0644 $(CONF_SRC) '$(CONF)'; \
	elif cmp -s $(CONF_SRC) '$(CONF)'; then \
		echo "$(CONF) is already the shipped default; left as is"; \
	else \
		install -m 0644 $(CONF_SRC) '$(CONF).new'; \
		echo "NOTE: $(CONF) exists and was kept; the shipped default is in $(CONF).new (merge by hand)"; \
	fi

.PHONY: uninstall
uninstall: uninstall-docs
	@if [ -e '$(RUNSIF)' ] && grep -q '$(RUNSIF_MARK)' '$(RUNSIF)'; then echo "rm -f $(RUNSIF)"; rm -f '$(RUNSIF)'; fi
	rm -f $(DESTDIR)$(BINDIR)/launch $(addprefix $(DESTDIR)$(PREFIX)/libexec/launch/,$(HELPERS)) '$(CONF).new'
	@for f in $(LISTS); do \
		rm -f "$(CONF_DIR)/$$f.new"; \
		if [ -e "$(CONF_DIR)/$$f" ] && ! cmp -s etc/launch/$$f "$(CONF_DIR)/$$f"; then \
			echo "NOTE: $(CONF_DIR)/$$f was changed from the shipped default; left in place"; \
		else rm -f "$(CONF_DIR)/$$f"; fi; \
	done
	rmdir $(DESTDIR)$(PREFIX)/libexec/launch 2>/dev/null || true
	@if [ -e '$(CONF)' ] && ! cmp -s $(CONF_SRC) '$(CONF)'; then \
		echo "NOTE: $(CONF) was changed from the shipped default; left in place"; \
	else \
		rm -f '$(CONF)'; rmdir '$(CONF_DIR)' 2>/dev/null || true; \
	fi
