# mk/dnn.mk — real/dnn: the inference engine (ONNX import, graph preparation, executors),
# nexus-profile, the model zoo (`make models`) and the DNN test suites.
# Included by the main Makefile (see "Subsystems outside the simulator" there).

# ============================================================================================
# CPU: import, prepare, the CPU executor, nexus-profile, model zoo, tests
# ============================================================================================

DEB_PACKAGES += libonnx-dev protobuf-c-compiler libprotobuf-c-dev libjpeg-dev \
	python3-torch python3-torchvision python3-onnx
# the main deps stamp only watches the Makefile: re-check packages when this list changes
$(DEPS_STAMP): mk/dnn.mk

# Debian's interpreter (python3-torch, -torchvision, -onnx), not whatever python3 is on PATH
DNN_PYTHON ?= /usr/bin/python3

# protoc-c output for Debian's onnx.proto (generated, never committed)
DNN_GEN := $(BUILD)/gen
DNN_PROTO := /usr/include/onnx/onnx.proto
DNN_PB_C := $(DNN_GEN)/onnx.pb-c.c
DNN_PB_H := $(DNN_GEN)/onnx.pb-c.h

DNN_MAIN_SRC := real/dnn/profile_main.c
DNN_SRC := $(filter-out $(DNN_MAIN_SRC) real/dnn/exec_nocuda.c,$(wildcard real/dnn/*.c))
DNN_OBJ := $(DNN_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/onnx.pb-c.o
# Without USE_CUDA=1, nx_exec_cuda_ops is the "not supported" stub; the CUDA section below
# sets DNN_CUDA_OBJ (and DNN_CUDA_LDLIBS) to the real executor's objects instead.
ifneq ($(USE_CUDA),1)
DNN_CUDA_OBJ := $(BUILD)/obj/real/dnn/exec_nocuda.o
DNN_CUDA_LDLIBS :=
endif
LIBDNN := $(BUILD)/libnxdnn.a
DNN_CFLAGS := -Ireal/dnn -I$(DNN_GEN)
DNN_LDLIBS = -lprotobuf-c -ljpeg -lpthread -lm $(DNN_CUDA_LDLIBS)

DNN_TEST_SRC := $(wildcard tests/dnn/test_*.c)
DNN_TEST_HELPER_SRC := $(filter-out $(DNN_TEST_SRC),$(wildcard tests/dnn/*.c))
DNN_TEST_HELPER_OBJ := $(DNN_TEST_HELPER_SRC:%.c=$(BUILD)/obj/%.o)
DNN_TEST_BIN := $(DNN_TEST_SRC:tests/dnn/%.c=$(BUILD)/tests/dnn/%)

BINS += $(BUILD)/bin/nexus-profile
EXTRA_TEST_BIN += $(DNN_TEST_BIN)

# Debian's schema is a package file: on a fresh machine it exists only once `make deps` has run,
# so it is made by the deps stamp (without this rule make gives up before installing anything:
# "No rule to make target '/usr/include/onnx/onnx.proto'")
$(DNN_PROTO): | $(DEPS_STAMP)
	$(Q)test -f $@ || { echo "$@ is missing: install Debian's libonnx-dev (make deps)" >&2; exit 1; }

$(DNN_PB_C) $(DNN_PB_H) &: $(DNN_PROTO) | $(DEPS_STAMP)
	@mkdir -p $(DNN_GEN)
	@$(if $(filter 1,$(V)),,echo "  PROTOC-C  $(DNN_PROTO)")
	$(Q)cp $(DNN_PROTO) $(DNN_GEN)/onnx.proto && cd $(DNN_GEN) && protoc-c --c_out=. onnx.proto

$(BUILD)/obj/gen/onnx.pb-c.o: $(DNN_PB_C) $(SETTINGS)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  CC  $<")
	$(Q)$(CC) $(CFLAGS) -I$(DNN_GEN) -c $< -o $@

# every object of the engine, its tools and tests sees real/dnn and the generated header
$(DNN_OBJ) $(DNN_CUDA_OBJ) $(BUILD)/obj/real/dnn/exec_nocuda.o $(DNN_MAIN_SRC:%.c=$(BUILD)/obj/%.o) \
  $(DNN_TEST_SRC:%.c=$(BUILD)/obj/%.o) $(DNN_TEST_HELPER_OBJ): CFLAGS += $(DNN_CFLAGS)
$(DNN_OBJ) $(DNN_MAIN_SRC:%.c=$(BUILD)/obj/%.o) $(DNN_TEST_SRC:%.c=$(BUILD)/obj/%.o) \
  $(DNN_TEST_HELPER_OBJ): | $(DNN_PB_H)

$(LIBDNN): $(DNN_OBJ) $(DNN_CUDA_OBJ)
	@$(if $(filter 1,$(V)),,echo "  AR  $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/nexus-profile: $(BUILD)/obj/real/dnn/profile_main.o $(LIBDNN) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(DNN_LDLIBS) $(LDLIBS)

$(BUILD)/tests/dnn/%: $(BUILD)/obj/tests/dnn/%.o $(DNN_TEST_HELPER_OBJ) $(LIBDNN) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(DNN_LDLIBS) $(LDLIBS) -lcunit

# --- model zoo: models/*.onnx and their PyTorch reference outputs (models/*.ref) -----------
DNN_MODELS_STAMP := models/.exported
.PHONY: models
models: $(DNN_MODELS_STAMP)
$(DNN_MODELS_STAMP): tools/export_models.py | $(DEPS_STAMP)
	@echo "  EXPORT  models/ (tools/export_models.py)"
	$(Q)$(DNN_PYTHON) -W ignore tools/export_models.py --out models
	$(Q)touch $@
# the model tests compare against models/*.ref
test: $(DNN_MODELS_STAMP)

# ============================================================================================
# CUDA (USE_CUDA=1): real/dnn/cuda/ — the CUDA executor, nexus-dnn-check, `make bundle`
# (owned by the CUDA side; the CPU section above reads DNN_CUDA_OBJ and DNN_CUDA_LDLIBS)
# ============================================================================================
#
#   make USE_CUDA=1                 nvcc (sm_90) compiles real/dnn/cuda/*.cu; links cudart,
#                                   cuDNN 9 and cuBLASLt from $(CUDA_HOME) (CUDA 13)
#   make bundle USE_CUDA=1          dist/bin + dist/lib (every non-system library), rpath
#                                   $ORIGIN/../lib: runs on a GPU node without dev packages
#   make test                       also runs real/dnn/cuda/compile_check.sh: a USE_CUDA=1 build
#                                   in build/cuda-check wherever nvcc exists (skipped otherwise)
#
# Without USE_CUDA=1, nx_exec_cuda_ops is real/dnn/exec_nocuda.c (init: NX_ERR_NOTSUP).

CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_GENCODE ?= -gencode=arch=compute_90,code=sm_90
NVCCFLAGS := -std=c++17 -O3 -g $(CUDA_GENCODE) -Xcompiler -Wall,-Wextra,-Werror,-fPIC \
	-Werror all-warnings -Iengine -Ireal/dnn -MMD -MP $(EXTRA_NVCCFLAGS)

DNN_CHECK_OBJ := $(BUILD)/obj/real/dnn/cuda/check_main.o
BINS += $(BUILD)/bin/nexus-dnn-check
EXTRA_TEST_CMDS += real/dnn/cuda/compile_check.sh

ifeq ($(USE_CUDA),1)
DNN_CUDA_SRC := $(wildcard real/dnn/cuda/*.cu)
DNN_CUDA_OBJ := $(DNN_CUDA_SRC:%.cu=$(BUILD)/obj/%.o)
# the bundle's lib/ first ($ORIGIN/../lib), then the toolkit's for binaries run from build/
DNN_CUDA_LDLIBS := -L$(CUDA_HOME)/lib64 -lcudnn -lcublasLt -lcudart -lstdc++ \
	-Wl,-rpath,\$$ORIGIN/../lib -Wl,-rpath,$(CUDA_HOME)/lib64
# every binary finds the bundle's libraries first (dist/bin -> dist/lib); this also changes
# the build settings, so switching USE_CUDA rebuilds everything (no stale libnxdnn.a)
LDLIBS += -Wl,-rpath,\$$ORIGIN/../lib
# (the CPU section's archive rule was read before DNN_CUDA_OBJ was set here)
$(LIBDNN): $(DNN_CUDA_OBJ)
endif

$(BUILD)/obj/real/dnn/cuda/%.o: real/dnn/cuda/%.cu real/dnn/cuda/cuda_int.h $(SETTINGS) | $(DEPS_STAMP)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  NVCC  $<")
	$(Q)$(NVCC) $(NVCCFLAGS) -c $< -o $@

$(DNN_CHECK_OBJ): CFLAGS += $(DNN_CFLAGS)
$(DNN_CHECK_OBJ): | $(DNN_PB_H)

$(BUILD)/bin/nexus-dnn-check: $(DNN_CHECK_OBJ) $(LIBDNN) $(LIBENGINE)
	@mkdir -p $(dir $@)
	@$(if $(filter 1,$(V)),,echo "  LD  $@")
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(DNN_LDLIBS) $(LDLIBS)

# --- the relocatable bundle ----------------------------------------------------------------
.PHONY: bundle
bundle: $(BINS)
ifneq ($(USE_CUDA),1)
	@echo "bundle: build it with the CUDA executor: make bundle USE_CUDA=1" >&2; exit 1
endif
	$(Q)CUDA_HOME=$(CUDA_HOME) real/dnn/cuda/bundle.sh $(BUILD)/bin dist
