/*
 * parallel.h: spiral's one threading model.
 *
 * A fixed pool of threads (the calling thread plus n - 1 workers) runs the
 * independent tasks of one operation: the row blocks of a matrix product,
 * the (batch, head) pairs of attention, the chunks of an elementwise loop.
 * OpenBLAS is set to one thread when the pool starts, so every BLAS call
 * runs on the thread that made it and the two never compete for cores.
 *
 * Threads: $SPIRAL_THREADS if set, else the number of online cores. Tasks
 * write disjoint outputs and never depend on which thread runs them, so
 * results are the same for any thread count (tests check it bit for bit).
 *
 * A parallel_for issued while another is running (from a worker, or from a
 * second application thread) runs its tasks serially on the caller.
 *
 * Small jobs run serially on the caller too: handing tasks to another
 * thread costs about a microsecond when it is spinning for work, tens when
 * it has to be woken, more than a job of a few thousand operations takes.
 * parallel_for_work carries the caller's estimate of the job's size; below
 * PARALLEL_SERIAL_WORK the tasks run on the calling thread, in order, with
 * thread index 0; below PARALLEL_WAKE_WORK they go to the workers that are
 * awake (spinning for the next job) but no sleeping worker is woken for
 * them. Tasks are independent, so the results are the same bits either way.
 */
#ifndef SPIRAL_PARALLEL_H
#define SPIRAL_PARALLEL_H

#include <stddef.h>

/* One task: `task` in [0, n_tasks), `thread` in [0, parallel_threads()),
 * for per-thread scratch. */
typedef void (*ParallelTask)(void *ctx, int task, int thread);

/* Runs fn(ctx, task, thread) for every task and returns when all are done,
 * on the pool whatever the job's size (for jobs known to be large). */
void parallel_for(int n_tasks, ParallelTask fn, void *ctx);

/* Jobs estimated below this many operations (1.5-2 us of one core's work)
 * run serially on the caller: twice the break-even of bench_busy's
 * dispatch section for a worker that is spinning for work (between 3,000
 * and 20,000), so that a job handed out is worth a wait for a worker that
 * the machine's other processes slow down. */
#define PARALLEL_SERIAL_WORK 20000.0
/* Jobs from this size up (30-40 us) wake sleeping workers: about the same
 * section's break-even for a worker that has to be woken (0.5 to 2
 * million on a loaded machine, less on a quiet one). */
#define PARALLEL_WAKE_WORK 500000.0

/* parallel_for for a job of about `work` operations in all: one per
 * element and arithmetic operation of a loop, about 10 per exp, 2 m n k / 8
 * for a matrix product (BLAS runs about 8x faster per flop than a loop).
 * The estimate only chooses where tasks run, never the results. */
void parallel_for_work(int n_tasks, ParallelTask fn, void *ctx, double work);

/* The number of threads of the pool (starting it if needed). */
int parallel_threads(void);

/* Restarts the pool with n threads (n >= 1; 0 = the default above).
 * Returns 0, or -1 with spiral_error if a thread could not be started (the
 * pool then runs with the threads it has). Not to be called while a
 * parallel_for is running. */
int parallel_set_threads(int n);

/* Splits [0, count) into at most max_parts contiguous parts whose bounds are
 * multiples of `align` (except the last); part p is [*begin, *end). The
 * split depends only on its arguments. */
void parallel_split(size_t count, int max_parts, size_t align, int part, size_t *begin,
                    size_t *end);

/* The number of parts parallel_split makes: ceil(count / per-part size). */
int parallel_parts(size_t count, int max_parts, size_t align);

#endif
