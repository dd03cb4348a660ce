/*
 * engine.c: picks the engine named by --device (see engine.h).
 */
#include <stdlib.h>
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

static int is_cuda(const char *device) { return device && !strcmp(device, "cuda"); }

const char *engine_precision_name(const char *device, const char *precision) {
    if (precision) return precision;
    return is_cuda(device) ? "bf16" : "fp32";
}

int engine_precision_check(const char *device, const char *precision) {
    if (engine_device_check(device)) return -1;
    if (!precision) return 0;
    if (strcmp(precision, "fp32") && strcmp(precision, "tf32") && strcmp(precision, "bf16"))
        return spiral_error("--precision %s: expected fp32, tf32 or bf16", precision);
    if (!is_cuda(device) && strcmp(precision, "fp32"))
        return spiral_error("--precision %s: the CPU engine computes in fp32 only (%s is for "
                            "--device cuda)", precision, precision);
    return 0;
}

int engine_open(Engine **out, const char *device, const char *precision,
                const SpiralConfig *cfg) {
    *out = NULL;
    if (engine_precision_check(device, precision)) return -1;
    if (is_cuda(device)) return engine_cuda_open(out, cfg, engine_precision_name(device, precision));
    return engine_cpu_open(out, cfg);
}

int engine_open_with_weights(Engine **out, const char *device, const char *precision,
                             const Model *model) {
    if (engine_open(out, device, precision, &model->cfg)) return -1;
    size_t n = model->layout.n_params;
    float *values = malloc(n * sizeof(float));
    int status = values ? 0 : spiral_error("out of memory copying the weights to %s", device);
    for (size_t i = 0; status == 0 && i < n; i++) values[i] = (float)model->params[i];
    if (status == 0) status = (*out)->ops->set_params(*out, values);
    free(values);
    if (status) {
        engine_free(*out);
        *out = NULL;
    }
    return status;
}

void engine_free(Engine *engine) {
    if (engine) engine->ops->free(engine);
}
