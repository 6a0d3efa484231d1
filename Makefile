# Nexus in C — the one build.
#
#   make            everything that needs no GPU (engine, policies, simulator)
#   make test       build and run every CUnit suite (each in its own process, under a timeout)
#   make demo       the default experiment: Nexus against the baselines, table + PNGs
#   make bench      simulator speed and placement speed
#   make plots      PNGs for results/ (gnuplot)
#   make clean
#   make SAN=address,undefined    build with sanitizers (separate build dir)
#   make V=1        show the commands
#
# Missing Debian packages are installed by `make deps`, which everything depends on.

SHELL := /bin/bash
.DEFAULT_GOAL := all

CC ?= gcc
SAN ?=
V ?= 0
OPT ?= -O2

ifeq ($(SAN),)
BUILD := build
else
BUILD := build/san
endif

Q := @
ifeq ($(V),1)
Q :=
endif

CFLAGS_BASE := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter $(OPT) -g \
	-MMD -MP
ifneq ($(SAN),)
CFLAGS_BASE += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN := -fsanitize=$(SAN)
endif
CFLAGS := $(CFLAGS_BASE) $(EXTRA_CFLAGS)

# --- layers: each directory sees only the headers of the layers below it ------
#   engine/    engine/                       (no I/O, threads, clock, globals)
#   policies/  engine/ policies/
#   io/        engine/ io/                   (files: experiments, profiles, reports)
#   sim/       engine/ policies/ io/ sim/
#   real/      engine/ policies/ io/ + its own (mk/real.mk): never sim/
#   real/dnn/  engine/ + its own (mk/dnn.mk)
#   traces/    nothing (tracegen.c stands alone)
#   tools/, tests/: everything
# tests/layering.sh checks every #include against the same table (and README.md's
# Layout table against the tree).
INC_ENGINE := -Iengine
INC_POLICIES := -Iengine -Ipolicies
INC_IO := -Iengine -Iio
INC_SIM := -Iengine -Ipolicies -Iio -Isim
INC_REAL := -Iengine -Ipolicies -Iio
INC_ALL := -Iengine -Ipolicies -Iio -Isim
INC := $(INC_ALL)
$(BUILD)/obj/engine/%.o: INC := $(INC_ENGINE)
$(BUILD)/obj/policies/%.o: INC := $(INC_POLICIES)
$(BUILD)/obj/io/%.o: INC := $(INC_IO)
$(BUILD)/obj/sim/%.o: INC := $(INC_SIM)
$(BUILD)/obj/real/%.o: INC := $(INC_REAL)
$(BUILD)/obj/real/dnn/%.o: INC := $(INC_ENGINE)
$(BUILD)/obj/gen/%.o: INC :=
$(BUILD)/obj/traces/%.o: INC :=
LDLIBS := -lyaml -lgsl -lgslcblas -lm

DEB_PACKAGES := libyaml-dev libgsl-dev libcunit1-dev gnuplot-nox
DEPS_STAMP := build/.deps-ok

ENGINE_SRC := $(wildcard engine/*.c)
POLICY_SRC := $(wildcard policies/*.c)
IO_SRC := $(wildcard io/*.c)
SIM_LIB_SRC := $(filter-out sim/main.c,$(wildcard sim/*.c))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_HELPER_SRC := $(filter-out $(TEST_SRC),$(wildcard tests/*.c))

ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/obj/%.o)
POLICY_OBJ := $(POLICY_SRC:%.c=$(BUILD)/obj/%.o)
IO_OBJ := $(IO_SRC:%.c=$(BUILD)/obj/%.o)
SIM_LIB_OBJ := $(SIM_LIB_SRC:%.c=$(BUILD)/obj/%.o)
TEST_HELPER_OBJ := $(TEST_HELPER_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)

LIBENGINE := $(BUILD)/libnxengine.a
LIBIO := $(BUILD)/libnxio.a
LIBSIM := $(BUILD)/libnxsim.a
BINS := $(BUILD)/bin/nexus-sim $(BUILD)/bin/nexus-bench $(BUILD)/bin/nexus-tracegen

# Subsystems outside the simulator (real/dnn, real/rpc, ...) add themselves in
# mk/*.mk: they append to DEB_PACKAGES, BINS (built by `make`), EXTRA_TEST_BIN
# (CUnit binaries that `make test` runs), EXTRA_TEST_CMDS (other test commands
# that `make test` runs, each must exit 0) and BENCH_CMDS, and bring their rules.
EXTRA_TEST_BIN :=
# golden simulations: summary.json byte for byte (tests/golden/check.sh)
EXTRA_TEST_CMDS := tests/golden/check.sh tests/layering.sh
BENCH_CMDS :=
include $(sort $(wildcard mk/*.mk))

.PHONY: all deps test demo bench plots clean experiments

all: $(BINS)

# --- Debian packages -------------------------------------------------------
deps: $(DEPS_STAMP)
$(DEPS_STAMP): Makefile $(wildcard mk/*.mk)
	$(Q)missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
	$(Q)mkdir -p $(dir $@) && touch $@

# --- rebuild when flags change (Redis .make-settings) ----------------------
SETTINGS := $(BUILD)/.make-settings
SETTINGS_NOW := $(CC) $(CFLAGS) $(LDSAN) $(LDLIBS) $(INC_ALL) $(INC_REAL)
$(shell mkdir -p $(BUILD); echo '$(SETTINGS_NOW)' | cmp -s - $(SETTINGS) || echo '$(SETTINGS_NOW)' > $(SETTINGS))

$(BUILD)/obj/%.o: %.c $(SETTINGS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC  $<")
	$(Q)$(CC) $(CFLAGS) $(INC) -c $< -o $@

$(LIBENGINE): $(ENGINE_OBJ) $(POLICY_OBJ)
	@$(if $(filter 1,$(V)),,echo "  AR  $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBIO): $(IO_OBJ)
	@$(if $(filter 1,$(V)),,echo "  AR  $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBSIM): $(SIM_LIB_OBJ)
	@$(if $(filter 1,$(V)),,echo "  AR  $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/nexus-sim: $(BUILD)/obj/sim/main.o $(LIBSIM) $(LIBIO) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/nexus-bench: $(BUILD)/obj/tools/bench.o $(LIBSIM) $(LIBIO) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/nexus-tracegen: $(BUILD)/obj/traces/tracegen.o
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_HELPER_OBJ) $(LIBSIM) $(LIBIO) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS) -lcunit

# --- tests: every suite in its own process, under a timeout -------------------
TEST_TIMEOUT ?= 900
test: $(BINS) $(TEST_BIN) $(EXTRA_TEST_BIN)
	$(Q)fail=0; for t in $(TEST_BIN) $(EXTRA_TEST_BIN); do \
	  echo "== $$t"; \
	  if ! NX_BUILD=$(BUILD) timeout $(TEST_TIMEOUT) $$t; then echo "FAILED: $$t"; fail=1; fi; \
	done; \
	for c in $(EXTRA_TEST_CMDS); do \
	  echo "== $$c"; \
	  if ! NX_BUILD=$(BUILD) SAN=$(SAN) timeout $(TEST_TIMEOUT) $$c; then echo "FAILED: $$c"; fail=1; fi; \
	done; \
	if [ $$fail = 0 ]; then echo "all test suites passed"; else echo "some test suites FAILED"; exit 1; fi

# --- demo, bench, plots ------------------------------------------------------
DEMO_OUT ?= results/demo
demo: $(BINS)
	$(Q)./$(BUILD)/bin/nexus-sim experiments/demo.yml --out $(DEMO_OUT) --max-rate
	$(Q)$(MAKE) --no-print-directory plots PLOT_DIRS=$(DEMO_OUT)

bench: $(BINS)
	$(Q)./$(BUILD)/bin/nexus-bench
	$(Q)for c in $(BENCH_CMDS); do $$c || exit 1; done

PLOT_DIRS ?= $(wildcard results/*)
plots: | $(DEPS_STAMP)
	$(Q)for d in $(PLOT_DIRS); do \
	  [ -f $$d/summary.json ] || continue; \
	  plots/plot.sh $$d || exit 1; \
	done

clean:
	rm -rf build

.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
