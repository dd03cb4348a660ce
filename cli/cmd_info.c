/*
 * cmd_info.c: `spiral info`: parameters and analytic forward FLOPs of a
 * configuration, per block and in total (equations in core/cost.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint.h"
#include "cli.h"
#include "config.h"
#include "cost.h"
#include "steps.h"

static const char *help =
    "usage: spiral info (--config FILE | --weights FILE) [--seq-len L]\n"
    "\n"
    "Prints the parameter count and the analytic forward FLOPs per sequence of\n"
    "L tokens (default 256), for each block and in total, and the training\n"
    "FLOPs (3 x forward). FILE is a model or run JSON file, or a safetensors\n"
    "file whose metadata holds the config.\n";

int cmd_info(int argc, char **argv) {
    const char *config_path = NULL, *weights_path = NULL, *len_text = "256";
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--config", &config_path, NULL},
        {"--weights", &weights_path, NULL},
        {"--seq-len", &len_text, NULL},
    };
    if (cli_parse_options("info", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!config_path == !weights_path)
        return cli_usage_error("info", "give exactly one of --config and --weights");
    long L;
    if (cli_parse_long("--seq-len", len_text, 1, 1 << 20, &L)) return 2;

    SpiralConfig cfg;
    if (config_path) {
        if (config_load(&cfg, config_path)) return cli_fail("info");
    } else {
        ParamLayout layout;
        real *values;
        if (weights_load(weights_path, &cfg, &layout, &values)) return cli_fail("info");
        free(values);
        param_layout_free(&layout);
    }
    ModelCost cost;
    model_cost(&cost, &cfg, (int)L);
    printf("model: %s, d=%d, H=%d, F=%d, V=%d, layers %d pre + %d core x %d iterations + %d post\n",
           model_kind_name(model_kind(&cfg)), cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.vocab_size, cfg.n_pre,
           cfg.n_loop, cfg.n_iters, cfg.n_post);
    char slots[48] = "";
    if (cfg.topology == TOPOLOGY_MESH) snprintf(slots, sizeof slots, " (%d memory slots)", cfg.mesh_slots);
    printf("down %s, up %s, topology %s%s, %s embeddings; L = %ld tokens\n\n",
           config_down_name(cfg.down), config_up_name(cfg.up), config_topology_name(cfg.topology), slots,
           cfg.tie_embeddings ? "tied" : "untied", L);
    printf("%-24s %14s %18s %7s\n", "block", "parameters", "forward FLOPs/seq", "FLOPs%");
    for (int b = 0; b < cost.n_blocks; b++) {
        const CostBlock *block = &cost.blocks[b];
        printf("%-24s %14.0f %18.0f %6.1f%%\n", block->name, block->params, block->flops,
               100 * block->flops / cost.forward_flops);
    }
    printf("%-24s %14.0f %18.0f %6.1f%%\n", "total", cost.params, cost.forward_flops, 100.0);
    printf("\nparameters: %.0f total, %.0f non-embedding\n", cost.params, cost.params_nonembedding);
    printf("forward FLOPs per sequence: %.4g (%.4g per token)\n", cost.forward_flops,
           cost.forward_flops / L);
    printf("training FLOPs per sequence (3 x forward): %.4g\n", cost.train_flops);
    return 0;
}
