# spiral: build, test, demo, benchmarks.
#
# The library is compiled twice from the same sources:
#   build/libspiral.a      real = float   (the `spiral` binary, most tests)
#   build/libspiral_f64.a  real = double  (gradient checks against finite
#                                          differences, see base/real.h)
# `make test` runs every test, then the same suite under AddressSanitizer and
# UBSan (`make asan`, built in build/asan/), then the tests of spiral's own
# threads under ThreadSanitizer (`make tsan`, built in build/tsan/).

BUILD    ?= build
CC       ?= cc
# -O3: vectorizes the elementwise loops (softmax, SwiGLU, norms); -g:
# usable backtraces; -fno-math-errno lets sqrt/exp inline;
# -fno-trapping-math lets the clamps of exp_float (base/fastmath.h) become
# vector blends (spiral never enables floating-point traps). No
# -ffast-math: no reassociation, so results are reproducible, the same for
# any thread count, and NaN checks work.
OPT      ?= -O3 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Wno-unused-parameter \
            -fno-math-errno -fno-trapping-math -Ibase -Icore -Idata -Iprobes -Ianalysis -Ireports \
            $(shell pkg-config --cflags openblas gsl sqlite3 jansson nettle)
# GSL's pkg-config adds its own reference CBLAS; OpenBLAS provides CBLAS.
LDLIBS   += $(filter-out -lgslcblas,$(shell pkg-config --libs openblas gsl sqlite3 jansson nettle)) -lm -lpthread

LIB_SRC  := $(wildcard base/*.c core/*.c data/*.c probes/*.c analysis/*.c reports/*.c)
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
# Tests also built against the double-precision library (tight tolerances).
TESTS_F64 := $(basename $(notdir $(wildcard tests/test_layers.c tests/test_gradcheck.c tests/test_decode.c)))

LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/f32/%.o)
LIB_OBJ_F64 := $(LIB_SRC:%.c=$(BUILD)/f64/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/f32/%.o)
TEST_BINS   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%) \
               $(TESTS_F64:%=$(BUILD)/tests/%_f64)

.PHONY: all test check asan tsan demo bench bench-build deps clean
all: $(BUILD)/spiral $(BUILD)/libspiral.a

$(BUILD)/f32/%.o: %.c $(wildcard base/*.h core/*.h data/*.h probes/*.h analysis/*.h reports/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@
$(BUILD)/f64/%.o: %.c $(wildcard base/*.h core/*.h data/*.h probes/*.h analysis/*.h reports/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSPIRAL_DOUBLE -c $< -o $@

$(BUILD)/libspiral.a: $(LIB_OBJ)
	ar rcs $@ $^
$(BUILD)/libspiral_f64.a: $(LIB_OBJ_F64)
	ar rcs $@ $^

$(BUILD)/spiral: $(CLI_OBJ) $(BUILD)/libspiral.a
	$(CC) $(CFLAGS) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/tests/%_f64: tests/%.c $(wildcard tests/*.h) $(BUILD)/libspiral_f64.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DSPIRAL_DOUBLE -Itests $< $(BUILD)/libspiral_f64.a -o $@ $(LDFLAGS) $(LDLIBS)
$(BUILD)/tests/%: tests/%.c $(wildcard tests/*.h) $(BUILD)/libspiral.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests $< $(BUILD)/libspiral.a -o $@ $(LDFLAGS) $(LDLIBS)

# Runs every test binary and the shell tests; prints "N passed, N failed".
check: $(TEST_BINS) $(BUILD)/spiral
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BINS)

# make test = the suite, then the suite under ASan + UBSan; the benchmarks
# are built too (not run: that is make bench), so a change that breaks one
# is seen at once.
test: check bench-build
	@$(MAKE) --no-print-directory asan
	@$(MAKE) --no-print-directory tsan

# The tests of spiral's own threads (the pool; the recording's insert
# thread) under ThreadSanitizer, built in build/tsan/.
TSAN_TESTS := test_parallel test_record
tsan:
	@$(MAKE) --no-print-directory BUILD=build/tsan OPT="-O1 -g -fsanitize=thread" \
	  LDFLAGS="-fsanitize=thread" $(TSAN_TESTS:%=build/tsan/tests/%)
	@BUILD=build/tsan sh scripts/tsan.sh $(TSAN_TESTS)

asan:
	@$(MAKE) --no-print-directory BUILD=build/asan \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" check

deps:
	@sh scripts/deps.sh

demo: deps all
	@sh scripts/demo.sh $(BUILD)/spiral

# Benchmarks: each bench/bench_*.c is a program that prints a table and its
# ratios against a reference measured in the same run (never a timed test).
BENCH_SRC  := $(wildcard bench/bench_*.c)
BENCH_BINS := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(BUILD)/libspiral.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibench $< $(BUILD)/libspiral.a -o $@ $(LDFLAGS) $(LDLIBS)

bench-build: $(BENCH_BINS)

bench: $(BENCH_BINS)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; echo; done

clean:
	rm -rf build

# ---- CUDA engine (core/cuda/) and its proofs (tests/cuda/) ----------------
# Only `make cuda`, `make test-cuda`, `make sanitize-cuda` and `make
# bench-cuda` use these; plain `make` never calls nvcc, and `make test` only
# through tests/cuda*.sh where nvcc and a GPU both exist (elsewhere they
# print a skip line). The proof programs link the CPU reference engine compiled here
# from its sources in double (the files that need neither GSL, SQLite nor
# OpenBLAS: tests/cuda/ref/ supplies the two CBLAS products with plain
# loops), so they build on a GPU machine that has only CUDA and jansson.
# CUDA_DEPS: an optional folder with include/jansson*.h and lib/libjansson.a
# for machines without libjansson-dev.
NVCC        ?= nvcc
# sm_90a: Hopper (H100, H200) machine code, no PTX JIT at start.
CUDA_ARCH   ?= -gencode=arch=compute_90a,code=sm_90a
CUDA_DEPS   ?=
CUDA_BUILD  := $(BUILD)/cuda
CUDA_INC    := -Ibase -Icore -Icore/cuda -Itests $(if $(CUDA_DEPS),-I$(CUDA_DEPS)/include)
CUDA_FLAGS  ?= -O3 -std=c++17 $(CUDA_ARCH) -Xcompiler -Wall
CUDA_SRC    := $(wildcard core/cuda/*.cu)
CUDA_OBJ    := $(CUDA_SRC:%.cu=$(CUDA_BUILD)/%.o)
CUDA_REF_SRC := base/error.c base/vec.c base/parallel.c base/matmul.c base/jsontext.c \
                base/fileio.c core/config.c core/params.c core/scale.c core/layers.c \
                core/mesh.c core/model.c core/model_memory.c core/adamw.c core/cost.c \
                tests/cuda/ref/ref_cblas.c
# Same flags as the library (no FMA contraction under -std=c11), so the
# float AdamW below rounds exactly like the library's.
CUDA_REF_CFLAGS := -std=c11 -D_GNU_SOURCE -O3 -g -Wall -Wextra -Wno-unused-parameter \
                   -fno-math-errno -fno-trapping-math -Itests/cuda/ref $(CUDA_INC)
CUDA_REF_OBJ := $(CUDA_REF_SRC:%.c=$(CUDA_BUILD)/ref/%.o) $(CUDA_BUILD)/ref/adamw_f32.o
CUDA_LDLIBS := -lcublas $(if $(CUDA_DEPS),$(CUDA_DEPS)/lib/libjansson.a,-ljansson) -lpthread -lm
CUDA_REF32_OBJ := $(CUDA_REF_SRC:%.c=$(CUDA_BUILD)/ref32/%.o)
CUDA_BINS   := $(CUDA_BUILD)/test_cuda_kernels $(CUDA_BUILD)/test_cuda_engine \
               $(CUDA_BUILD)/cpu_f32_ref $(CUDA_BUILD)/bench_cuda_engine $(CUDA_BUILD)/spiral

# build/cuda/spiral: the whole CLI with `--device cuda` (core/engine.h): the
# library and CLI compiled again into $(CUDA_BUILD)/host/, with
# core/cuda/engine_cuda.c (plain C over cuda_engine.h) in place of
# core/engine_nocuda.c, linked by nvcc (its CUDA runtime, as the proofs)
# with cuBLAS. With CUDA_DEPS the
# headers and static GSL, SQLite, nettle and jansson come from that folder
# (a GPU machine without the -dev packages; scripts/cuda_deps.sh lays one
# out); CUDA_BLAS names the OpenBLAS to link, e.g. a shared library already
# on the machine: "-L/usr/lib/x86_64-linux-gnu -l:libopenblas.so.0".
CUDA_BLAS   ?= -lopenblas
CUDA_HOST_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -Wall -Wextra -Wno-unused-parameter \
                    -fno-math-errno -fno-trapping-math -Ibase -Icore -Icore/cuda -Idata -Iprobes \
                    -Ianalysis -Ireports \
                    $(if $(CUDA_DEPS),-I$(CUDA_DEPS)/include,$(shell pkg-config --cflags openblas gsl sqlite3 jansson nettle))
CUDA_HOST_LIBS := $(if $(CUDA_DEPS),$(addprefix $(CUDA_DEPS)/lib/,libgsl.a libsqlite3.a libnettle.a libjansson.a) $(CUDA_BLAS),$(LDLIBS)) \
                  -ldl -lm -lpthread
CUDA_HOST_SRC := $(filter-out core/engine_nocuda.c,$(LIB_SRC)) $(CLI_SRC) core/cuda/engine_cuda.c
CUDA_HOST_OBJ := $(CUDA_HOST_SRC:%.c=$(CUDA_BUILD)/host/%.o)
$(CUDA_BUILD)/host/%.o: %.c $(wildcard base/*.h core/*.h core/cuda/*.h data/*.h probes/*.h analysis/*.h reports/*.h cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_HOST_CFLAGS) -c $< -o $@
$(CUDA_BUILD)/spiral: $(CUDA_HOST_OBJ) $(CUDA_OBJ)
	$(NVCC) $(CUDA_ARCH) $^ -o $@ -lcublas $(CUDA_HOST_LIBS)

.PHONY: cuda test-cuda bench-cuda sanitize-cuda
cuda: $(CUDA_BINS)

# The CUDA engine against PyTorch on the same model (bench/cuda_vs_torch.sh).
bench-cuda: cuda
	@BUILD=$(BUILD) sh bench/cuda_vs_torch.sh

test-cuda: cuda
	@BUILD=$(BUILD) sh tests/cuda.sh

# compute-sanitizer memcheck, racecheck and synccheck over the kernel proofs
# and short GPU runs (tests/cuda_sanitize.sh; `make test` runs it too).
sanitize-cuda: cuda
	@BUILD=$(BUILD) sh tests/cuda_sanitize.sh

$(CUDA_BUILD)/core/cuda/%.o: core/cuda/%.cu $(wildcard core/cuda/*.h core/cuda/*.cuh core/*.h base/*.h)
	@mkdir -p $(dir $@)
	$(NVCC) $(CUDA_FLAGS) $(CUDA_INC) -c $< -o $@
$(CUDA_BUILD)/ref/%.o: %.c $(wildcard base/*.h core/*.h tests/cuda/ref/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_REF_CFLAGS) -DSPIRAL_DOUBLE -c $< -o $@
# The CPU engine in float too: cpu_f32_ref, the yardstick of fp32 rounding.
$(CUDA_BUILD)/ref32/%.o: %.c $(wildcard base/*.h core/*.h tests/cuda/ref/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_REF_CFLAGS) -c $< -o $@
$(CUDA_BUILD)/cpu_f32_ref: tests/cuda/cpu_f32_ref.c $(CUDA_REF32_OBJ)
	$(CC) $(CUDA_REF_CFLAGS) $^ -o $@ $(if $(CUDA_DEPS),$(CUDA_DEPS)/lib/libjansson.a,-ljansson) -lpthread -lm
# core/adamw.c once more in float, renamed, for the bit-exact AdamW proof.
$(CUDA_BUILD)/ref/adamw_f32.o: core/adamw.c $(wildcard base/*.h core/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_REF_CFLAGS) -Dadamw_step=adamw_step_f32 -Dgrad_global_norm=grad_global_norm_f32 \
	  -c $< -o $@
$(CUDA_BUILD)/test_cuda_engine.o: tests/cuda/test_cuda_engine.c $(wildcard tests/*.h core/cuda/*.h core/*.h base/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CUDA_REF_CFLAGS) -DSPIRAL_DOUBLE -c $< -o $@
$(CUDA_BUILD)/test_cuda_engine: $(CUDA_BUILD)/test_cuda_engine.o $(CUDA_OBJ) $(CUDA_REF_OBJ)
	$(NVCC) $(CUDA_ARCH) $^ -o $@ $(CUDA_LDLIBS)
# Kernel-level proofs: C++ (the launchers take CUDA types), the CPU layers in double.
$(CUDA_BUILD)/test_cuda_kernels: tests/cuda/test_cuda_kernels.cu $(CUDA_OBJ) $(CUDA_REF_OBJ)
	$(NVCC) $(CUDA_FLAGS) -DSPIRAL_DOUBLE $(CUDA_INC) $^ -o $@ $(CUDA_LDLIBS)
$(CUDA_BUILD)/bench_cuda_engine: tests/cuda/bench_cuda_engine.cu $(CUDA_OBJ) $(CUDA_REF_OBJ)
	$(NVCC) $(CUDA_FLAGS) $(CUDA_INC) $^ -o $@ $(CUDA_LDLIBS)
