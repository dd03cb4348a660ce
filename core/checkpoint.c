/*
 * checkpoint.c: weights_save and weights_load (see checkpoint.h).
 *
 * Both directions go through the parameter table, so the file's tensor names
 * and shapes are exactly those of params.h, and loading checks the file
 * against the table built from the file's own configuration: a missing,
 * misshapen or unknown tensor is reported by name rather than silently
 * leaving parameters uninitialised or ignoring data.
 */
#include "checkpoint.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "safetensors.h"

/* Formats a shape as "(a, b)" into buf. */
static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, ")");
}

/* A parameter tensor's shape as int64, like a SafeTensor's. */
static void param_shape(const ParamTensor *p, int64_t shape[2]) {
    shape[0] = p->shape[0];
    shape[1] = p->ndim == 2 ? p->shape[1] : 0;
}

/* Checks that layout is the table param_layout_build makes for cfg, so that
 * the file written is one weights_load accepts. */
static int check_layout(const char *path, const SpiralConfig *cfg, const ParamLayout *layout) {
    ParamLayout expected;
    if (param_layout_build(&expected, cfg))
        return spiral_error_prefix("cannot write %s", path);
    int same = expected.n_tensors == layout->n_tensors && expected.n_params == layout->n_params;
    for (int i = 0; same && i < layout->n_tensors; i++) {
        const ParamTensor *a = &expected.tensors[i], *b = &layout->tensors[i];
        same = strcmp(a->name, b->name) == 0 && a->ndim == b->ndim && a->shape[0] == b->shape[0] &&
               a->shape[1] == b->shape[1] && a->offset == b->offset;
    }
    param_layout_free(&expected);
    if (!same)
        return spiral_error("cannot write %s: the parameter layout is not that of the configuration",
                            path);
    return 0;
}

int weights_save(const char *path, const SpiralConfig *cfg, const ParamLayout *layout,
                 const real *values) {
    if (check_layout(path, cfg, layout)) return -1;
    char *config_json = config_to_json(cfg);
    SafeTensor *tensors = calloc((size_t)layout->n_tensors + 1, sizeof *tensors);
    float *converted = NULL;
    const float *base;
#ifdef SPIRAL_DOUBLE
    /* The file is float32: convert the double buffer once. */
    converted = malloc((layout->n_params + 1) * sizeof *converted);
    if (converted)
        for (size_t i = 0; i < layout->n_params; i++)
            converted[i] = safetensors_double_to_float(values[i]);
    base = converted;
#else
    base = values;
#endif
    if (!config_json || !tensors || !base) {
        free(config_json);
        free(tensors);
        free(converted);
        return spiral_error("cannot write %s: out of memory", path);
    }
    for (int i = 0; i < layout->n_tensors; i++) {
        const ParamTensor *p = &layout->tensors[i];
        SafeTensor *t = &tensors[i];
        t->name = (char *)p->name; /* read only: the writer takes const */
        t->ndim = p->ndim;
        param_shape(p, t->shape);
        t->numel = (int64_t)p->numel;
        t->data = (float *)(base + p->offset);
    }
    const char *keys[2] = {"config", "format"};
    const char *vals[2] = {config_json, "pt"};
    int status = safetensors_write(path, 2, keys, vals, layout->n_tensors, tensors);
    free(config_json);
    free(tensors);
    free(converted);
    return status;
}

/* In a tied model, whether the file's lm_head.weight is a copy of its
 * tok_emb.weight (same shape, bit-identical values). */
static int is_tied_copy(const SafeFile *file, const SafeTensor *head) {
    const SafeTensor *emb = safetensors_find(file, "tok_emb.weight");
    if (!emb || emb->ndim != head->ndim || emb->numel != head->numel) return 0;
    for (int d = 0; d < head->ndim; d++)
        if (emb->shape[d] != head->shape[d]) return 0;
    return memcmp(emb->data, head->data, (size_t)head->numel * sizeof(float)) == 0;
}

/* Fills values from the file, checking every tensor of the layout against
 * the file and every tensor of the file against the layout. */
static int fill_values(const char *path, const SafeFile *file, const SpiralConfig *cfg,
                       const ParamLayout *layout, real *values) {
    char got[256], want[256];
    for (int i = 0; i < layout->n_tensors; i++) {
        const ParamTensor *p = &layout->tensors[i];
        int64_t shape[2];
        param_shape(p, shape);
        format_shape(want, sizeof want, p->ndim, shape);
        const SafeTensor *t = safetensors_find(file, p->name);
        if (!t) return spiral_error("%s: missing tensor %s, expected shape %s", path, p->name, want);
        int same = t->ndim == p->ndim;
        for (int d = 0; same && d < p->ndim; d++) same = t->shape[d] == shape[d];
        if (!same) {
            format_shape(got, sizeof got, t->ndim, t->shape);
            return spiral_error("%s: tensor %s has shape %s, expected %s", path, p->name, got, want);
        }
        real *dst = values + p->offset;
        for (size_t k = 0; k < p->numel; k++) dst[k] = (real)t->data[k];
    }
    for (int i = 0; i < file->n_tensors; i++) {
        const SafeTensor *t = &file->tensors[i];
        if (param_layout_find(layout, t->name) >= 0) continue;
        if (strncmp(t->name, "adam.", 5) == 0) continue; /* optimizer state, not weights */
        if (strcmp(t->name, "lm_head.weight") == 0 && cfg->tie_embeddings) {
            if (is_tied_copy(file, t)) continue; /* some exporters write the tied head */
            return spiral_error("%s: unexpected tensor lm_head.weight: the model ties its embeddings "
                                "and this tensor differs from tok_emb.weight",
                                path);
        }
        return spiral_error("%s: unexpected tensor %s", path, t->name);
    }
    return 0;
}

int weights_load(const char *path, SpiralConfig *cfg, ParamLayout *layout, real **values) {
    SafeFile file;
    char *source = NULL;
    real *buffer = NULL;
    *values = NULL;
    memset(layout, 0, sizeof *layout);
    if (safetensors_read(&file, path)) return -1;

    const char *config_text = safetensors_metadata(&file, "config");
    if (!config_text) {
        spiral_error("%s: __metadata__ has no \"config\" entry (the model configuration), so the "
                     "file is not a spiral checkpoint",
                     path);
        goto fail;
    }
    size_t source_cap = strlen(path) + 32;
    source = malloc(source_cap);
    if (!source) {
        spiral_error("%s: out of memory", path);
        goto fail;
    }
    snprintf(source, source_cap, "%s: __metadata__.config", path);
    if (config_parse(cfg, config_text, source)) goto fail;
    if (param_layout_build(layout, cfg)) {
        spiral_error_prefix("%s", path);
        goto fail;
    }
    buffer = malloc((layout->n_params + 1) * sizeof *buffer);
    if (!buffer) {
        spiral_error("%s: out of memory for %zu parameters", path, layout->n_params);
        goto fail;
    }
    if (fill_values(path, &file, cfg, layout, buffer)) goto fail;
    free(source);
    safetensors_free(&file);
    *values = buffer;
    return 0;
fail:
    free(buffer);
    free(source);
    param_layout_free(layout);
    safetensors_free(&file);
    return -1;
}
