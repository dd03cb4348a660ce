# spiral: build, test, demo, benchmarks.
#
# The library is compiled twice from the same sources:
#   build/libspiral.a      real = float   (the `spiral` binary, most tests)
#   build/libspiral_f64.a  real = double  (gradient checks against finite
#                                          differences, see base/real.h)
# `make test` runs every test, then the same suite under AddressSanitizer and
# UBSan (`make asan`, built in build/asan/).

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
TESTS_F64 := $(basename $(notdir $(wildcard tests/test_layers.c tests/test_gradcheck.c)))

LIB_OBJ     := $(LIB_SRC:%.c=$(BUILD)/f32/%.o)
LIB_OBJ_F64 := $(LIB_SRC:%.c=$(BUILD)/f64/%.o)
CLI_OBJ     := $(CLI_SRC:%.c=$(BUILD)/f32/%.o)
TEST_BINS   := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%) \
               $(TESTS_F64:%=$(BUILD)/tests/%_f64)

.PHONY: all test check asan demo bench deps clean
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

# make test = the suite, then the suite under ASan + UBSan.
test: check
	@$(MAKE) --no-print-directory asan

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
$(BUILD)/bench/%: bench/%.c $(BUILD)/libspiral.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ibench $< $(BUILD)/libspiral.a -o $@ $(LDFLAGS) $(LDLIBS)

bench: $(BENCH_BINS)
	@for b in $(BENCH_BINS); do echo "== $$b"; $$b || exit 1; echo; done

clean:
	rm -rf build
