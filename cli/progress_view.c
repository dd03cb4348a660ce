/*
 * progress_view.c: how the command line shows the library's progress
 * reports (base/progress.h).
 *
 * On a terminal: one line redrawn in place,
 *   [#########...............] train 340/1000 steps (34%) | loss 2.31 | ETA 1m 05s
 * When stderr is a file or a pipe: a plain line every 10 seconds at most,
 * and the last report always, so a log stays short and readable.
 */
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "clock.h"
#include "progress.h"

#define LINE_INTERVAL_SECONDS 10.0
#define BAR_WIDTH 24

typedef struct {
    int tty;
    double last_line;     /* when the last plain line was written */
    int open_line;        /* a terminal line is drawn and not yet ended */
} ProgressView;

static ProgressView view = {.last_line = -1e30};

/* "1h 02m", "3m 05s", "42s" for a duration in seconds. */
static void format_duration(char *out, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(out, size, "%ldh %02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60) snprintf(out, size, "%ldm %02lds", s / 60, s % 60);
    else snprintf(out, size, "%lds", s);
}

/* Writes one report: a redrawn bar on a terminal, a plain line otherwise. */
static void show(void *user, const ProgressReport *r) {
    ProgressView *v = user;
    double now = seconds_now();
    if (!v->tty && !r->finished && now - v->last_line < LINE_INTERVAL_SECONDS) return;
    v->last_line = now;
    char counts[96], eta_text[32] = "", elapsed_text[32];
    if (r->total > 0)
        snprintf(counts, sizeof counts, "%s %ld/%ld %s (%.0f%%)", r->task, r->done, r->total,
                 r->unit, 100.0 * (double)r->done / (double)r->total);
    else
        snprintf(counts, sizeof counts, "%s %ld %s", r->task, r->done, r->unit);
    format_duration(elapsed_text, sizeof elapsed_text, r->elapsed);
    double eta = progress_eta(r);
    if (!r->finished && eta >= 0) {
        char d[24];
        format_duration(d, sizeof d, eta);
        snprintf(eta_text, sizeof eta_text, " | ETA %s", d);
    }
    const char *sep = r->detail && r->detail[0] ? " | " : "";
    const char *detail = r->detail ? r->detail : "";
    if (v->tty) {
        char bar[BAR_WIDTH + 1];
        int filled = r->total > 0 ? (int)(BAR_WIDTH * (double)r->done / (double)r->total) : 0;
        for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < filled ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        fprintf(stderr, "\r[%s] %s%s%s | %s%s\033[K", bar, counts, sep, detail, elapsed_text,
                eta_text);
        v->open_line = !r->finished;
        if (r->finished) fputc('\n', stderr);
    } else {
        fprintf(stderr, "%s%s%s | %s elapsed%s\n", counts, sep, detail, elapsed_text, eta_text);
    }
    fflush(stderr);
}

Progress cli_progress(int enabled) {
    Progress p = {NULL, NULL};
    if (!enabled) return p;
    view.tty = isatty(STDERR_FILENO);
    p.fn = show;
    p.user = &view;
    return p;
}
