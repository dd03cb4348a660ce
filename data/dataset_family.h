/*
 * dataset_family.h: makes a dataset of any family by name (`spiral data
 * make`): the synthetic languages pcfg (synth_pcfg.h), dyck (synth_dyck.h)
 * and rhm (synth_rhm.h), and the corpora text and kjv (corpus_text.h).
 */
#ifndef SPIRAL_DATASET_FAMILY_H
#define SPIRAL_DATASET_FAMILY_H

#include "dataset.h"

/* Generates a dataset of `family` ("pcfg", "dyck", "rhm", "text" or
 * "kjv") from params_json (NULL: the family's defaults) and seed (the
 * synthetic families); text_path is the file of the text family. The
 * result is validated (dataset_validate). Returns 0, or -1 with an error
 * naming the family or the parameter. */
int dataset_make(Dataset *out, const char *family, const char *params_json, unsigned long seed,
                 const char *text_path);

#endif
