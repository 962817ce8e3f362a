# Keel's front door. The build itself is CMake (CMakePresets.json); this file only names the
# things a person wants to do. Every target installs what is missing first (scripts/deps.sh).
#
#   make            build the host tree (release) and the firmware
#   make check      build everything (ASan+UBSan host tree, firmware) and run every test
#   make demo       run the device on this machine (DEMO_SECONDS=N: unattended for N seconds)
#   make fuzz       run every fuzz target for FUZZ_SECONDS (default 60) each
#   make tsan       ThreadSanitizer build, runs the tests labelled tsan
#   make lint       static checks (cppcheck) on Keel's own code
#   make bench-X    run benchmark X (bench-rtos, bench-modbus, ...)
#   make sweep      the update power-cut sweep on a large image (1 MiB image, every operation cut)
#   make format     clang-format every source file

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
CTEST_ARGS ?=
DEPS_STAMP := build/.deps-ok
SHELL := /bin/bash

.PHONY: all deps host fw asan tsan release fuzz-build check demo fuzz lint format clean help sweep
all: release fw

help:
	@sed -n '4,13p' Makefile | sed 's/^# \{0,1\}//'

# deps.sh is cheap when everything is there; the stamp only skips it within one tree.
$(DEPS_STAMP): scripts/deps.sh
	@bash scripts/deps.sh
	@mkdir -p build && touch $@
deps: $(DEPS_STAMP)

define build_tree
	@cmake --preset $(1) >/dev/null
	@cmake --build build/$(1) -j $(JOBS) $(2)
endef

fw: $(DEPS_STAMP)
	$(call build_tree,fw)
asan: $(DEPS_STAMP) fw
	$(call build_tree,asan)
tsan: $(DEPS_STAMP)
	$(call build_tree,tsan)
	ctest --test-dir build/tsan -L tsan --output-on-failure $(CTEST_ARGS)
release: $(DEPS_STAMP)
	$(call build_tree,release)
fuzz-build: $(DEPS_STAMP)
	$(call build_tree,fuzz)

# A test that fails is run once more before the run counts as failed (--repeat until-pass:2),
# so a timing flake on a loaded 2-core machine does not hide the rest; the first failure's
# output is still printed. Known flakes are listed in docs/CONTRIBUTING.md.
check: asan
	ctest --test-dir build/asan -j $(JOBS) --output-on-failure --repeat until-pass:2 $(CTEST_ARGS)

fuzz: fuzz-build
	@set -e; for t in $$(find build/fuzz -type f -name 'fuzz_*' -perm -u+x | sort); do \
	  n=$$(basename $$t); \
	  echo "== $$n ($(FUZZ_SECONDS) s)"; \
	  scripts/fuzz-run.sh $$t build/fuzz/fuzz-corpus/$${n#fuzz_} $(FUZZ_SECONDS); \
	done

demo: release fw
	@scripts/demo.sh

lint: $(DEPS_STAMP)
	@scripts/lint.sh

format:
	@find include src tools firmware sim apps tests bench -name '*.[ch]' 2>/dev/null | \
	  xargs -r clang-format -i

bench-%: release fw
	@scripts/bench.sh $*

sweep: asan
	build/asan/tests/unit/update/unit_update_powercut 1048576 16384 500

clean:
	rm -rf build
