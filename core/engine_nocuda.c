/*
 * engine_nocuda.c: the CUDA entry points of engine.h in a build without
 * CUDA (plain `make`); `make cuda` links core/cuda/engine_cuda.c instead.
 */
#include "engine.h"
#include "error.h"

int engine_cuda_available(void) { return 0; }

int engine_cuda_open(Engine **out, const SpiralConfig *cfg, const char *precision) {
    *out = NULL;
    return spiral_error("--device cuda: this spiral was built without CUDA; build with make cuda");
}
