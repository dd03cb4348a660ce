/*
 * cmd_lens.c: `spiral lens`: the logit lens, per-slot gains and test-time
 * depth of a trained run; the work is analysis/lens.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "depth.h"
#include "engine.h"
#include "lens.h"
#include "store.h"

static const char *help =
    "usage: spiral lens --run RUN --data DATASET --store S.db [--split test]\n"
    "                   [--sequences 64] [--seq-len L] [--batch 8] [--step N]\n"
    "                   [--schedule 8,4,2,1] [--depths K] [--quiet]\n"
    "                   [--ablate T | --ablate-level G] [--ablate-mode zero|mean]\n"
    "                   [--patch T --source FILE [--positions A:B]] [--ablate-each]\n"
    "                   [--device cpu|cuda [--precision fp32|tf32|bf16]]\n"
    "\n"
    "Looks inside the loop of a trained run over --sequences windows of the\n"
    "split (the windows 'spiral record' takes), and prints and stores\n"
    "(table lens_results) for each state h(t), t = 0 .. T:\n"
    "  coda   loss and top-1 accuracy of the model made to exit after\n"
    "         iteration t: head(norm(f_post(h(t)))); t = T is the model itself\n"
    "  head   the same without the coda: head(norm(h(t)))\n"
    "and for each iteration, per slot of its chunks, the change of the exit\n"
    "loss over that iteration (negative: the iteration helped those positions).\n"
    "Intervals are 95% t intervals over sequences; deltas are paired.\n"
    "  --step N      the run's checkpoint at or before step N (default: the last)\n"
    "  --schedule    run the weights with other chunk sizes (see 'spiral eval\n"
    "                --help' for how iterations get their parameters)\n"
    "  --depths K    also the whole model with 1 .. K iterations: the schedule\n"
    "                cut to K, or extended by repeating its last chunk size\n"
    "  --ablate T, --ablate-level G  measure everything with the update e(t) of\n"
    "                iteration T, or of every iteration with chunk size G,\n"
    "                ablated; --ablate-mode zero (default: e(t) = 0) or mean\n"
    "                (e(t) replaced by its mean over all positions of the\n"
    "                windows, from a first pass)\n"
    "  --patch T     measure everything with iteration T's update at positions\n"
    "                A .. B-1 of every window (--positions A:B, default all)\n"
    "                taken from a run on --source FILE (uint16 tokens if the\n"
    "                name ends in .u16, else the bytes of a text file; its\n"
    "                first --seq-len tokens)\n"
    "  --ablate-each also ablate each iteration in turn, then each chunk size,\n"
    "                and print the loss change (paired 95% interval)\n"
    "  --device cuda the forward passes on the GPU (a spiral built with 'make\n"
    "                cuda'), in fp32 unless --precision says otherwise; with an\n"
    "                intervention each iteration's update makes a round trip\n"
    "                to the host (no interventions on a mesh model there)\n"
    "Progress goes to stderr.\n";

/* "1.2345 [1.2000, 1.2600]" */
static void fmt_ci(char *out, size_t size, double mean, double lo, double hi) {
    if (isfinite(mean)) snprintf(out, size, "%.4f [%.4f, %.4f]", mean, lo, hi);
    else snprintf(out, size, "-");
}

/* Prints the result as tables. */
static void print_result(const LensResult *r, const char *run, const char *data,
                         const char *split) {
    printf("run %s at step %lld, schedule %s, on %s (%s split): %d sequences, %lld predictions "
           "per exit\n", run, r->checkpoint_step, r->schedule, data, split, r->n_sequences,
           r->n_tokens);
    if (strcmp(r->intervention, "none"))
        printf("every exit after t >= 1 measured with the intervention: %s\n", r->intervention);
    printf("\n");
    printf("%-6s %4s  %-28s %-8s %-26s  %-28s %-8s\n", "exit t", "g", "loss with coda [95% CI]",
           "acc", "delta vs t=T", "loss head only", "acc");
    for (int k = 0; k < r->n_rows; k++) {
        const LensRow *c = &r->rows[k];
        if (strcmp(c->mode, "coda")) continue;
        const LensRow *h = NULL;
        for (int j = 0; j < r->n_rows; j++)
            if (!strcmp(r->rows[j].mode, "head") && r->rows[j].iteration == c->iteration)
                h = &r->rows[j];
        char a[64], b[64], dl[64];
        fmt_ci(a, sizeof a, c->loss, c->loss_lo, c->loss_hi);
        fmt_ci(dl, sizeof dl, c->delta, c->delta_lo, c->delta_hi);
        fmt_ci(b, sizeof b, h ? h->loss : NAN, h ? h->loss_lo : NAN, h ? h->loss_hi : NAN);
        printf("%-6d %4d  %-28s %-8.4f %-26s  %-28s %-8.4f\n", c->iteration, c->g, a, c->accuracy,
               dl, b, h ? h->accuracy : NAN);
    }
    int printed = 0;
    for (int k = 0; k < r->n_rows; k++) {
        const LensRow *s = &r->rows[k];
        if (strcmp(s->mode, "slot") || s->g < 2) continue;
        if (!printed++)
            printf("\nloss change over iteration t per slot of its chunks (negative: helped)\n"
                   "%-4s %4s %4s  %-28s\n", "t", "g", "slot", "delta [95% CI]");
        char dl[64];
        fmt_ci(dl, sizeof dl, s->delta, s->delta_lo, s->delta_hi);
        printf("%-4d %4d %4d  %-28s\n", s->iteration, s->g, s->slot, dl);
    }
    printed = 0;
    for (int k = 0; k < r->n_rows; k++) {
        const LensRow *s = &r->rows[k];
        if (strncmp(s->mode, "ablate", 6)) continue;
        if (!printed++)
            printf("\nablations (loss change against the model without them)\n%-26s %-28s "
                   "%-28s\n", "ablated", "loss [95% CI]", "change [95% CI]");
        char a[64], dl[64], what[64];
        fmt_ci(a, sizeof a, s->loss, s->loss_lo, s->loss_hi);
        fmt_ci(dl, sizeof dl, s->delta, s->delta_lo, s->delta_hi);
        if (!strncmp(s->mode, "ablate_level", 12))
            snprintf(what, sizeof what, "every g = %d (%s)", s->iteration,
                     strstr(s->mode, "mean") ? "mean" : "zero");
        else
            snprintf(what, sizeof what, "iteration %d, g = %d (%s)", s->iteration, s->g,
                     strstr(s->mode, "mean") ? "mean" : "zero");
        printf("%-26s %-28s %-28s\n", what, a, dl);
    }
    printed = 0;
    for (int k = 0; k < r->n_rows; k++) {
        const LensRow *s = &r->rows[k];
        if (strcmp(s->mode, "depth")) continue;
        if (!printed++)
            printf("\ntest-time depth\n%-10s %-24s %-28s %-8s\n", "iterations", "schedule",
                   "loss [95% CI]", "acc");
        char a[64];
        fmt_ci(a, sizeof a, s->loss, s->loss_lo, s->loss_hi);
        printf("%-10d %-24s %-28s %-8.4f\n", s->iteration, s->schedule, a, s->accuracy);
    }
}

int cmd_lens(int argc, char **argv) {
    const char *run = NULL, *data = NULL, *store_path = NULL;
    const char *seqs_text = NULL, *len_text = NULL, *batch_text = NULL, *step_text = NULL;
    const char *schedule_text = NULL, *depths_text = NULL;
    const char *ablate_text = NULL, *level_text = NULL, *mode_text = NULL;
    const char *patch_text = NULL, *positions_text = NULL;
    int quiet = 0;
    LensOptions options;
    lens_options_default(&options);
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--run", &run, NULL},
        {"--data", &data, NULL},
        {"--store", &store_path, NULL},
        {"--split", &options.split, NULL},
        {"--sequences", &seqs_text, NULL},
        {"--seq-len", &len_text, NULL},
        {"--batch", &batch_text, NULL},
        {"--step", &step_text, NULL},
        {"--schedule", &schedule_text, NULL},
        {"--depths", &depths_text, NULL},
        {"--quiet", NULL, &quiet},
        {"--ablate", &ablate_text, NULL},
        {"--ablate-level", &level_text, NULL},
        {"--ablate-mode", &mode_text, NULL},
        {"--ablate-each", NULL, &options.ablate_each},
        {"--patch", &patch_text, NULL},
        {"--source", &options.source_path, NULL},
        {"--positions", &positions_text, NULL},
        {"--device", &options.device, NULL},
        {"--precision", &options.precision, NULL},
    };
    if (cli_parse_options("lens", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!run || !data || !store_path)
        return cli_usage_error("lens", "--run, --data and --store are required");
    if (engine_precision_check(options.device, options.precision)) return cli_fail("lens");
    long v;
    if (seqs_text) {
        if (cli_parse_long("--sequences", seqs_text, 1, 1000000, &v)) return 2;
        options.n_sequences = (int)v;
    }
    if (len_text) {
        if (cli_parse_long("--seq-len", len_text, 1, 1 << 16, &v)) return 2;
        options.seq_len = (int)v;
    }
    if (batch_text) {
        if (cli_parse_long("--batch", batch_text, 1, 4096, &v)) return 2;
        options.batch_size = (int)v;
    }
    if (step_text) {
        if (cli_parse_long("--step", step_text, 0, 1L << 40, &v)) return 2;
        options.step = v;
    }
    if (depths_text) {
        if (cli_parse_long("--depths", depths_text, 1, 64, &v)) return 2;
        options.depths = (int)v;
    }
    if (schedule_text &&
        depth_parse_schedule("--schedule", schedule_text, options.schedule, &options.n_schedule))
        return cli_fail("lens");
    if (options.source_path && !patch_text)
        return cli_usage_error("lens", "--source goes with --patch");
    if (options.ablate_each && !ablate_text && !level_text && !patch_text) {
        /* --ablate-mode alone sets the mode of --ablate-each */
        if (mode_text && strcmp(mode_text, "zero") && strcmp(mode_text, "mean"))
            return cli_usage_error("lens", "--ablate-mode: expected zero or mean, got '%s'",
                                   mode_text);
        options.ablate_each_mean = mode_text && !strcmp(mode_text, "mean");
    } else if (cli_parse_intervention("lens", ablate_text, level_text, mode_text, patch_text,
                                      positions_text, &options.intervention)) {
        return 2;
    }
    Progress progress = cli_progress(!quiet);
    options.progress = &progress;
    Store store;
    if (store_open(&store, store_path, 0)) return cli_fail("lens");
    LensResult result;
    int status = lens_run(&store, run, data, &options, &result);
    store_close(&store);
    if (status) return cli_fail("lens");
    print_result(&result, run, data, options.split);
    lens_result_free(&result);
    return 0;
}
