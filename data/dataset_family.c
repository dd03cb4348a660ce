/*
 * dataset_family.c: a dataset family by name (dataset_family.h).
 */
#include "dataset_family.h"

#include <string.h>

#include "corpus_text.h"
#include "error.h"
#include "synth_dyck.h"
#include "synth_pcfg.h"
#include "synth_rhm.h"

/* Generates the dataset with the family's own generator. */
static int make_family(Dataset *ds, const char *family, const char *params, unsigned long seed,
                       const char *text_path) {
    if (!strcmp(family, "pcfg")) return synth_pcfg_make(ds, params, seed);
    if (!strcmp(family, "dyck")) return synth_dyck_make(ds, params, seed);
    if (!strcmp(family, "rhm")) return synth_rhm_make(ds, params, seed);
    if (!strcmp(family, "kjv")) return corpus_kjv_make(ds, params);
    if (!strcmp(family, "text")) {
        if (!text_path) return spiral_error("family text needs --text FILE");
        return corpus_text_make(ds, text_path, params);
    }
    return spiral_error("--family: expected pcfg, dyck, rhm, text or kjv, got '%s'", family);
}

int dataset_make(Dataset *out, const char *family, const char *params_json, unsigned long seed,
                 const char *text_path) {
    memset(out, 0, sizeof *out);
    if (make_family(out, family, params_json, seed, text_path)) return -1;
    if (dataset_validate(out)) {
        dataset_free(out);
        return -1;
    }
    return 0;
}
