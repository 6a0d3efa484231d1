# real.mk — the real cluster mode (issue 5): protocols compiled with
# protoc-c, the gRPC layer (real/rpc), the node glue (real/node), the daemons
# and tools (real/daemon), their tests (tests/real) and benchmark.
#
#   build/bin/nexus-scheduler, nexus-backend, nexus-frontend, nexus-loadgen,
#   nexus-cluster, nexus-rpcbench
#
# Only real/rpc/rpc.c includes <grpc/grpc.h>. Generated code goes to
# $(BUILD)/gen, objects to $(BUILD)/obj like everything else.

DEB_PACKAGES += libgrpc-dev protobuf-c-compiler libprotobuf-c-dev pkg-config \
	python3-grpcio python3-grpc-tools python3-protobuf iproute2 prometheus openssl
# the deps stamp watches the Makefile only: re-check packages when this list changes
$(DEPS_STAMP): mk/real.mk

REAL_GEN := $(BUILD)/gen
REAL_PROTO := $(wildcard real/proto/*.proto)
REAL_PB_C := $(REAL_PROTO:real/proto/%.proto=$(REAL_GEN)/%.pb-c.c)
REAL_PB_H := $(REAL_PB_C:.c=.h)
REAL_PB_OBJ := $(REAL_PROTO:real/proto/%.proto=$(BUILD)/obj/gen/%.pb-c.o)

REAL_MAINS := real/daemon/scheduler.c real/daemon/backend.c real/daemon/frontend.c \
	real/daemon/loadgen_main.c real/daemon/cluster.c real/daemon/rpcbench.c
# the cpu/cuda executors need the DNN engine (mk/dnn.mk's LIBDNN); without it, stubs
ifneq ($(LIBDNN),)
REAL_EXEC_OFF := real/daemon/exec_nodnn.c
REAL_BACKEND_LIBS = $(LIBDNN)
REAL_BACKEND_LDLIBS = $(DNN_LDLIBS)
else
REAL_EXEC_OFF := real/daemon/exec_dnn.c
endif
REAL_LIB_SRC := $(wildcard real/rpc/*.c real/node/*.c) \
	$(filter-out $(REAL_MAINS) $(REAL_EXEC_OFF),$(wildcard real/daemon/*.c))
REAL_LIB_OBJ := $(REAL_LIB_SRC:%.c=$(BUILD)/obj/%.o)
REAL_MAIN_OBJ := $(REAL_MAINS:%.c=$(BUILD)/obj/%.o)
REAL_TEST_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard tests/real/*.c))
LIBREAL := $(BUILD)/libnxreal.a

REAL_CFLAGS := -Ireal/rpc -Ireal/node -Ireal/daemon -I$(REAL_GEN) -pthread
# pkg-config runs when a link does (after `make deps` installed it), not at parse time
REAL_LDLIBS = $(shell pkg-config --libs grpc libprotobuf-c 2>/dev/null || echo -lgrpc -lgpr -lprotobuf-c) -pthread

$(REAL_LIB_OBJ) $(REAL_MAIN_OBJ) $(REAL_TEST_OBJ) $(REAL_PB_OBJ): CFLAGS += $(REAL_CFLAGS)
$(BUILD)/obj/real/daemon/exec_dnn.o: CFLAGS += -Ireal/dnn
$(REAL_TEST_OBJ): CFLAGS += -Itests
# sources include the generated headers: generate them first
$(REAL_LIB_OBJ) $(REAL_MAIN_OBJ) $(REAL_TEST_OBJ): | $(REAL_PB_H)

$(REAL_GEN)/%.pb-c.c $(REAL_GEN)/%.pb-c.h: real/proto/%.proto | $(DEPS_STAMP)
	@mkdir -p $(REAL_GEN)
	@$(if $(filter 1,$(V)),,echo "  PROTOC-C $<")
	$(Q)protoc-c --c_out=$(REAL_GEN) -Ireal/proto $<

$(BUILD)/obj/gen/%.pb-c.o: $(REAL_GEN)/%.pb-c.c $(SETTINGS)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC  $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(LIBREAL): $(REAL_LIB_OBJ) $(REAL_PB_OBJ)
	@$(if $(filter 1,$(V)),,echo "  AR  $@")
	$(Q)rm -f $@ && ar rcs $@ $^

REAL_BINS := $(BUILD)/bin/nexus-scheduler $(BUILD)/bin/nexus-backend $(BUILD)/bin/nexus-frontend \
	$(BUILD)/bin/nexus-loadgen $(BUILD)/bin/nexus-cluster $(BUILD)/bin/nexus-rpcbench
BINS += $(REAL_BINS)

$(BUILD)/bin/nexus-scheduler: $(BUILD)/obj/real/daemon/scheduler.o
$(BUILD)/bin/nexus-backend: $(BUILD)/obj/real/daemon/backend.o
$(BUILD)/bin/nexus-frontend: $(BUILD)/obj/real/daemon/frontend.o
$(BUILD)/bin/nexus-loadgen: $(BUILD)/obj/real/daemon/loadgen_main.o
$(BUILD)/bin/nexus-cluster: $(BUILD)/obj/real/daemon/cluster.o
$(BUILD)/bin/nexus-rpcbench: $(BUILD)/obj/real/daemon/rpcbench.o
$(BUILD)/bin/nexus-backend: $(REAL_BACKEND_LIBS)
$(BUILD)/bin/nexus-backend: REAL_EXTRA = $(REAL_BACKEND_LIBS) $(REAL_BACKEND_LDLIBS)
# real mode links the engine, policies and io layers, never the simulator
$(REAL_BINS): $(LIBREAL) $(LIBIO) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $(filter %.o,$^) $(LIBREAL) $(LIBIO) $(LIBENGINE) $(REAL_EXTRA) \
		$(LDLIBS) $(REAL_LDLIBS)

# --- tests ---------------------------------------------------------------------
$(BUILD)/tests/real/test_rpc: $(BUILD)/obj/tests/real/test_rpc.o $(TEST_HELPER_OBJ) $(LIBREAL) \
		$(LIBIO) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $(filter %.o,$^) $(LIBREAL) $(LIBIO) $(LIBENGINE) $(LDLIBS) \
		$(REAL_LDLIBS) -lcunit

EXTRA_TEST_BIN += $(BUILD)/tests/real/test_rpc
EXTRA_TEST_CMDS += tests/real/e2e.sh tests/real/failure.sh tests/real/overload.sh tests/real/netns.sh \
	tests/real/python_client.sh tests/real/ops.sh tests/real/tls.sh \
	tests/real/restart.sh tests/real/fidelity.sh tests/real/concurrent.sh
BENCH_CMDS += tests/real/bench.sh
