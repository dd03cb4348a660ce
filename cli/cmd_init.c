/*
 * cmd_init.c: `spiral init`: writes freshly initialized weights.
 */
#include <stdio.h>

#include "checkpoint.h"
#include "cli.h"
#include "config.h"
#include "model.h"

static const char *help =
    "usage: spiral init --config FILE --out WEIGHTS.safetensors [--seed S]\n"
    "\n"
    "Writes the documented initialization (README, \"Initialization\") of the\n"
    "model in FILE (a model or run JSON file) to a safetensors file, config in\n"
    "its metadata. The same seed (default 0) gives the same weights.\n";

int cmd_init(int argc, char **argv) {
    const char *config_path = NULL, *out_path = NULL, *seed_text = "0";
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--config", &config_path, NULL},
        {"--out", &out_path, NULL},
        {"--seed", &seed_text, NULL},
    };
    if (cli_parse_options("init", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!config_path) return cli_usage_error("init", "--config is required");
    if (!out_path) return cli_usage_error("init", "--out is required");
    long seed;
    if (cli_parse_long("--seed", seed_text, 0, 2147483647L, &seed)) return 2;

    SpiralConfig cfg;
    Model model;
    if (config_load(&cfg, config_path)) return cli_fail("init");
    if (model_build(&model, &cfg)) return cli_fail("init");
    model_init_weights(&model, (unsigned long)seed);
    int status = weights_save(out_path, &cfg, &model.layout, model.params);
    if (status == 0)
        printf("wrote %s: %zu parameters in %d tensors, seed %ld\n", out_path,
               model.layout.n_params, model.layout.n_tensors, seed);
    model_free(&model);
    return status ? cli_fail("init") : 0;
}
