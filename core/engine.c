/*
 * engine.c: picks the engine named by --device (see engine.h).
 */
#include <string.h>

#include "engine.h"
#include "error.h"

int engine_device_check(const char *device) {
    if (!device || !strcmp(device, "cpu")) return 0;
    if (!strcmp(device, "cuda")) {
        if (!engine_cuda_available())
            return spiral_error("--device cuda: this spiral was built without CUDA; build with "
                                "make cuda");
        return 0;
    }
    return spiral_error("--device %s: unknown device (expected cpu or cuda)", device);
}

int engine_open(Engine **out, const char *device, const SpiralConfig *cfg) {
    *out = NULL;
    if (device && !strcmp(device, "cuda") && cfg->topology == TOPOLOGY_MESH)
        return spiral_error("--device cuda: the CUDA engine does not implement topology mesh "
                            "yet; train and record this model with --device cpu");
    if (engine_device_check(device)) return -1;
    if (device && !strcmp(device, "cuda")) return engine_cuda_open(out, cfg);
    return engine_cpu_open(out, cfg);
}

void engine_free(Engine *engine) {
    if (engine) engine->ops->free(engine);
}
