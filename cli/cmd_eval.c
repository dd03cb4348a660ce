/*
 * cmd_eval.c: `spiral eval`: loads weights (from spiral or any program that
 * writes the documented safetensors layout), scores one token sequence, and
 * optionally writes the logits (.npy) and the gradient of the mean loss
 * (safetensors, same tensor names). The work is core/eval.c.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "engine.h"
#include "decode_eval.h"
#include "depth.h"
#include "eval.h"
#include "eval_run.h"

static const char *help =
    "usage: spiral eval (--weights W.safetensors | --run RUN --store S.db [--step N])\n"
    "                   (--text FILE | --tokens FILE) [--schedule 8,4,2,1,1]\n"
    "                   [--ablate T | --ablate-level G] [--ablate-mode zero|mean]\n"
    "                   [--patch T --source FILE [--positions A:B]]\n"
    "                   [--logits OUT.npy] [--grads OUT.safetensors] [--incremental]\n"
    "                   [--device cpu|cuda [--precision fp32|tf32|bf16]]\n"
    "       spiral eval --store S.db --run RUN [--step N] [--per-position]\n"
    "\n"
    "Reads one sequence of N tokens (the bytes of a text file, or a\n"
    "little-endian uint16 file with --tokens), runs the model on the first\n"
    "N-1, scores each next token and prints the mean cross-entropy in nats.\n"
    "  --logits  writes the (N-1, V) float32 logits as a NumPy .npy file\n"
    "  --grads   writes the gradient of the mean loss for every parameter,\n"
    "            under the parameter's own tensor name\n"
    "  --device cuda  the forward (and --grads, or the intervention's passes)\n"
    "            on the GPU (a spiral built with 'make cuda'), in fp32 unless\n"
    "            --precision says otherwise; no --incremental there, and no\n"
    "            interventions on a mesh model\n"
    "  --incremental  scores token by token through the incremental decoder\n"
    "            (as 'spiral generate' runs) instead of one forward pass: the\n"
    "            same loss and logits up to float rounding (no --grads, no\n"
    "            interventions)\n"
    "  --run     the model of a trained run of the store: its last checkpoint,\n"
    "            or with --step N its checkpoint at or before step N\n"
    "  --schedule  test-time depth: run the same weights with these chunk sizes\n"
    "            (more, fewer or other iterations). Iteration t takes the\n"
    "            per-iteration parameters, offset and shift of trained\n"
    "            iteration t if it has the same g, else of the last trained\n"
    "            iteration with that g; a g no trained iteration has is an\n"
    "            error unless the model uses down 'mean' and up 'copy'\n"
    "Interventions on the update e(t) an iteration adds to the state (printed\n"
    "beside the loss without them):\n"
    "  --ablate T        ablate iteration T's update (0-based)\n"
    "  --ablate-level G  ablate every iteration with chunk size G\n"
    "  --ablate-mode     zero (default): e(t) = 0; mean: e(t) replaced at every\n"
    "                    position by its mean over the sequence's positions\n"
    "  --patch T         replace iteration T's update at --positions A:B (default\n"
    "                    all; B exclusive) by its value on --source FILE, a\n"
    "                    sequence of the same length read like the sequence\n"
    "Any safetensors file with the documented tensor names and the config in\n"
    "__metadata__[\"config\"] is accepted, e.g. one written by PyTorch.\n"
    "\n"
    "--run without a sequence: scores RUN's last checkpoint (or, with --step N,\n"
    "its checkpoint at or before step N) on the validation windows its\n"
    "training used (its train object: dataset, seq_len, window, eval_batches\n"
    "x batch_size windows) and prints the loss beside the entropy floor and\n"
    "the n-gram baselines over exactly those targets, and the gap to the floor.\n"
    "  --per-position  also the loss, floor and gap by slot rho = (i + w) mod g\n"
    "                  within the chunks of each level of the schedule, and by\n"
    "                  position in the window (in the document with\n"
    "                  \"window\": \"document\")\n";

/* spiral eval --store S --run RUN: the run's validation windows again. */
static int eval_run_command(const char *store_path, const char *run_name, long long step,
                            int per_position) {
    if (!store_path || !run_name)
        return cli_usage_error("eval", "--run and --store go together");
    Store store;
    if (store_open_readonly(&store, store_path)) return cli_fail("eval");
    EvalRunResult result;
    int status = eval_run(&result, &store, run_name, step);
    store_close(&store);
    if (status) return cli_fail("eval");
    eval_run_print(stdout, &result, run_name, per_position);
    eval_run_result_free(&result);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    const char *weights_path = NULL, *text_path = NULL, *tokens_path = NULL;
    const char *logits_path = NULL, *grads_path = NULL;
    const char *run = NULL, *store_path = NULL, *step_text = NULL, *schedule_text = NULL;
    const char *ablate_text = NULL, *level_text = NULL, *mode_text = NULL, *patch_text = NULL;
    const char *source_path = NULL, *positions_text = NULL;
    const char *device = NULL, *precision = NULL;
    int per_position = 0, incremental = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    CliOption table[] = {
        {"--weights", &weights_path, NULL},
        {"--text", &text_path, NULL},
        {"--tokens", &tokens_path, NULL},
        {"--logits", &logits_path, NULL},
        {"--grads", &grads_path, NULL},
        {"--run", &run, NULL},
        {"--store", &store_path, NULL},
        {"--step", &step_text, NULL},
        {"--per-position", NULL, &per_position},
        {"--schedule", &schedule_text, NULL},
        {"--ablate", &ablate_text, NULL},
        {"--ablate-level", &level_text, NULL},
        {"--ablate-mode", &mode_text, NULL},
        {"--patch", &patch_text, NULL},
        {"--source", &source_path, NULL},
        {"--positions", &positions_text, NULL},
        {"--incremental", NULL, &incremental},
        {"--device", &device, NULL},
        {"--precision", &precision, NULL},
    };
    if (cli_parse_options("eval", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (engine_precision_check(device, precision)) return cli_fail("eval");
    int on_cpu = !device || !strcmp(device, "cpu");
    long long step = -1;
    long v;
    if (step_text) {
        if (cli_parse_long("--step", step_text, 0, 1L << 40, &v)) return 2;
        step = v;
    }
    if (weights_path && (run || store_path || step_text))
        return cli_usage_error("eval", "--run, --store and --step go without --weights");
    if ((run || store_path) && !text_path && !tokens_path) {
        /* the run's validation windows */
        if (!on_cpu)
            return cli_usage_error("eval", "--device %s goes with a sequence (--text or --tokens)",
                                   device);
        if (logits_path || grads_path || schedule_text || ablate_text || level_text ||
            patch_text)
            return cli_usage_error("eval", "--run without --text/--tokens scores a run's "
                                           "validation windows; --logits, --grads, --schedule "
                                           "and interventions go with a sequence");
        if (incremental)
            return cli_usage_error("eval", "--incremental goes with a sequence (--text or "
                                           "--tokens)");
        return eval_run_command(store_path, run, step, per_position);
    }
    if (per_position)
        return cli_usage_error("eval", "--per-position goes with --run RUN and no sequence");
    if (run && !store_path) return cli_usage_error("eval", "--run and --store go together");
    if (!weights_path && !run)
        return cli_usage_error("eval", "give --weights, or --run with --store");
    if (!text_path == !tokens_path)
        return cli_usage_error("eval", "give exactly one of --text and --tokens");

    EvalOptions options = {.weights_path = weights_path, .text_path = text_path,
                           .tokens_path = tokens_path, .logits_path = logits_path,
                           .grads_path = grads_path, .store_path = store_path,
                           .run_name = run, .step = step, .device = device,
                           .precision = precision};
    if (schedule_text &&
        depth_parse_schedule("--schedule", schedule_text, options.schedule, &options.n_schedule))
        return cli_fail("eval");
    if (cli_parse_intervention("eval", ablate_text, level_text, mode_text, patch_text,
                               positions_text, &options.intervention))
        return 2;
    if (source_path && !patch_text) return cli_usage_error("eval", "--source goes with --patch");
    options.source_path = source_path;
    EvalResult result;
    if (incremental && (grads_path || options.intervention.kind != INTERVENE_NONE))
        return cli_usage_error("eval", "--incremental goes without --grads and interventions");
    if (!on_cpu && incremental)
        return cli_usage_error("eval", "--device %s: --incremental runs on the CPU engine only",
                               device);
    Progress progress = cli_progress(incremental);
    if (incremental ? eval_sequence_incremental(&options, &progress, &result)
                    : eval_sequence(&options, &result))
        return cli_fail("eval");
    if (run) printf("run %s, checkpoint of step %lld, %d iterations\n", run, result.step,
                    result.n_iters);
    printf("loss %.6f nats over %d predictions (perplexity %.4f, %.4f bits/token)\n", result.loss,
           result.n_predictions, exp(result.loss), result.loss / log(2.0));
    if (options.intervention.kind != INTERVENE_NONE) {
        char what[96];
        intervention_describe(what, sizeof what, &options.intervention);
        printf("intervention %s: loss %.6f without it, change %+.6f nats\n", what,
               result.clean_loss, result.loss - result.clean_loss);
    }
    if (logits_path)
        printf("wrote %s: logits (%d, %d) float32\n", logits_path, result.n_predictions,
               result.vocab_size);
    if (grads_path)
        printf("wrote %s: gradient of the mean loss, %d tensors\n", grads_path,
               result.n_tensors);
    return 0;
}
