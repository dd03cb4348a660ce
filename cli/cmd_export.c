/*
 * cmd_export.c: `spiral export`: one recorded site as a NumPy array, with
 * the dataset's labels beside it, for study outside spiral (probes/export.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "export.h"
#include "steps.h"
#include "store.h"

static const char *help =
    "usage: spiral export --store S.db --run RUN --data DATASET --site SITE\n"
    "                     --iteration T --out STATES.npy [--split test] [--scale G]\n"
    "                     [--format npy]\n"
    "\n"
    "Writes the recorded states of one (site, iteration, scale) for every\n"
    "sequence as a float32 array (rows, d): rows are the sequences' positions\n"
    "(tokens, or latents at scale G) one after the other. Beside it, for the\n"
    "same rows: STATES.seq.npy (sequence), STATES.pos.npy (token position of\n"
    "the row in its window; a latent's last member) and STATES.<label>.npy\n"
    "(int32) for every label of the dataset (-1 where undefined). SITE is\n"
    "token, latent_in, latent_out, coda, or memory.B (memory slot B of a mesh\n"
    "model after iteration I's write); G defaults to the iteration's chunk\n"
    "size for latent sites and 1 otherwise.\n";

int cmd_export(int argc, char **argv) {
    const char *store_path = NULL, *run = NULL, *data = NULL, *site = NULL, *out = NULL;
    const char *split = "test", *iter_text = NULL, *scale_text = NULL, *format = "npy";
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--store", &store_path, NULL},
        {"--run", &run, NULL},
        {"--data", &data, NULL},
        {"--site", &site, NULL},
        {"--iteration", &iter_text, NULL},
        {"--scale", &scale_text, NULL},
        {"--split", &split, NULL},
        {"--out", &out, NULL},
        {"--format", &format, NULL},
    };
    if (cli_parse_options("export", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!store_path || !run || !data || !site || !iter_text || !out)
        return cli_usage_error("export", "--store, --run, --data, --site, --iteration and --out are required");
    if (strcmp(format, "npy")) return cli_usage_error("export", "--format: only npy is supported, got '%s'", format);
    int is_latent = !strcmp(site, "latent_in") || !strcmp(site, "latent_out");
    if (!is_latent && strcmp(site, "token") && strcmp(site, "coda") && site_memory_slot(site) < 0)
        return cli_usage_error("export", "--site: expected token, latent_in, latent_out, coda or memory.B, "
                               "got '%s'", site);
    long iteration, scale = 0;
    if (cli_parse_long("--iteration", iter_text, 0, 1 << 20, &iteration)) return 2;
    if (scale_text && cli_parse_long("--scale", scale_text, 1, 1 << 20, &scale)) return 2;

    Store store;
    if (store_open_readonly(&store, store_path)) return cli_fail("export");
    ExportOptions options = {.run = run, .dataset = data, .split = split, .site = site,
                             .iteration = (int)iteration, .scale = (int)scale, .out = out};
    ExportResult result;
    int status = export_site(&store, &options, &result);
    store_close(&store);
    if (status) return cli_fail("export");
    printf("wrote %s: (%zu, %zu) float32, %s iteration %ld scale %d of %d sequences; "
           "with .seq, .pos and %d label arrays\n", out, result.n_rows, result.d, site,
           iteration, result.scale, result.n_sequences, result.n_labels);
    return 0;
}
