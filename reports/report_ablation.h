/*
 * report_ablation.h: the paper's ablations as a table and a figure of a
 * report, when the report's runs form an ablation study.
 *
 * How a report knows. Among the comparison's groups (compare.h: runs equal
 * but for the seed), one whose first run is named "base" or "base-sN" (the
 * name `spiral sweep` gives seed N of a run called "base") is the base;
 * every other group is a variant. examples/paper/ablations.json is such a
 * study; its variants are trained to the base's training FLOPs
 * ("match_flops"), so every group is read at the end of its own schedule
 * (compare.h) at equal FLOPs. A variant whose FLOPs differ from the base's
 * by more than the comparison's budget tolerance is still listed, with its
 * FLOPs against the base's, and marked as not at equal FLOPs.
 *
 * What changed is read from the configs, not from the names: the model
 * fields where a variant differs from the base (schedule order, chunk
 * sizes, offsets, shifts, down, up, topology, depth). The paper's direction
 * is attached only where the paper reports one (docs: README "Ablations"):
 *   the schedule reversed (fine-to-coarse)      worse, ~0.24 perplexity
 *   no full-resolution iteration                 better (reported best)
 *   no-overlap shift (s >= g at every level)     worse
 *   a larger share of depth in the loop          worse (too high hurts)
 *   MeSH against anchor (a row of its own)       better, ~0.13 perplexity
 * and "not reported" for everything else (mean vs self-aggregation, copy
 * vs allocation, offsets, anchor or MeSH against the residual base, a
 * smaller share of depth in the loop, several changes at once).
 *
 * Per variant: its loss at equal FLOPs (mean and t interval over seeds),
 * the difference to the base with a Welch t interval (stats.h), the
 * difference in perplexity exp(mean) - exp(mean base), the paper's
 * direction, and the verdict: "agrees" or "opposite" when the interval
 * excludes 0, "inconclusive" when it contains it, "-" when the paper is
 * silent.
 */
#ifndef SPIRAL_REPORT_ABLATION_H
#define SPIRAL_REPORT_ABLATION_H

#include "compare.h"
#include "report_doc.h"

#define ABLATION_MAX_ROWS 64

typedef struct {
    char name[128];           /* the variant's name (its first run's, without -sN) */
    char change[256];         /* what differs from the base (or the pair compared) */
    char paper[160];          /* the paper's reported direction, or "not reported" */
    int expected;             /* +1 the paper reports it worse, -1 better, 0 silent */
    int group, reference;     /* comparison groups: the variant and what it is compared with */
    int n;                    /* seeds with a reading */
    double flops_ratio;       /* its training FLOPs at the reading / the reference's */
    int equal_flops;          /* |ratio - 1| within the budget tolerance */
    MeanInterval loss;        /* loss at equal FLOPs over seeds */
    MeanInterval delta;       /* loss - reference loss, Welch interval */
    double delta_ppl;         /* exp(mean loss) - exp(mean reference loss) */
    const char *verdict;      /* "agrees", "opposite", "inconclusive", "-" */
} AblationRow;

typedef struct {
    int base;                 /* the base group, -1 if none (not an ablation study) */
    char base_name[128];
    MeanInterval base_loss;
    int n_rows;
    AblationRow rows[ABLATION_MAX_ROWS];
} AblationTable;

/* Builds the table from a comparison (read at each group's own end, or at
 * a fixed budget). table->base = -1 when no group is the base. Returns 0,
 * or -1 on bad data (an interval that cannot be computed). */
int ablation_table_build(AblationTable *table, const Comparison *c);

/* The ablation section: the table and a note on how to read it; nothing
 * when the comparison is not an ablation study. */
void report_section_ablation(Doc *doc, const Comparison *c);

#endif
