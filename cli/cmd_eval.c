/*
 * cmd_eval.c: `spiral eval`: loads weights (from spiral or any program that
 * writes the documented safetensors layout), scores one token sequence, and
 * optionally writes the logits (.npy) and the gradient of the mean loss
 * (safetensors, same tensor names). The work is core/eval.c.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "eval.h"

static const char *help =
    "usage: spiral eval --weights W.safetensors (--text FILE | --tokens FILE)\n"
    "                   [--logits OUT.npy] [--grads OUT.safetensors]\n"
    "\n"
    "Reads one sequence of N tokens (the bytes of a text file, or a\n"
    "little-endian uint16 file with --tokens), runs the model on the first\n"
    "N-1, scores each next token and prints the mean cross-entropy in nats.\n"
    "  --logits  writes the (N-1, V) float32 logits as a NumPy .npy file\n"
    "  --grads   writes the gradient of the mean loss for every parameter,\n"
    "            under the parameter's own tensor name\n"
    "Any safetensors file with the documented tensor names and the config in\n"
    "__metadata__[\"config\"] is accepted, e.g. one written by PyTorch.\n";

int cmd_eval(int argc, char **argv) {
    const char *weights_path = NULL, *text_path = NULL, *tokens_path = NULL;
    const char *logits_path = NULL, *grads_path = NULL;
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
    };
    if (cli_parse_options("eval", argc, argv, table, (int)(sizeof table / sizeof table[0]), NULL))
        return 2;
    if (!weights_path) return cli_usage_error("eval", "--weights is required");
    if (!text_path == !tokens_path)
        return cli_usage_error("eval", "give exactly one of --text and --tokens");

    EvalOptions options = {.weights_path = weights_path, .text_path = text_path,
                           .tokens_path = tokens_path, .logits_path = logits_path,
                           .grads_path = grads_path};
    EvalResult result;
    if (eval_sequence(&options, &result)) return cli_fail("eval");
    printf("loss %.6f nats over %d predictions (perplexity %.4f, %.4f bits/token)\n", result.loss,
           result.n_predictions, exp(result.loss), result.loss / log(2.0));
    if (logits_path)
        printf("wrote %s: logits (%d, %d) float32\n", logits_path, result.n_predictions,
               result.vocab_size);
    if (grads_path)
        printf("wrote %s: gradient of the mean loss, %d tensors\n", grads_path,
               result.n_tensors);
    return 0;
}
