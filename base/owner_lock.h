/*
 * owner_lock.h: a file that says which live process owns something.
 *
 * The owner holds an advisory lock (flock) on the file for as long as it
 * works, and writes one line naming itself into it. The kernel drops the
 * lock when the process ends, however it ends (SIGKILL included), so a lock
 * never outlives its owner and needs no cleaning up: a stale file is just a
 * file nobody holds. Used for a run being trained (core/run_lock.h) and a
 * recording being written (data/recording_store.h).
 */
#ifndef SPIRAL_OWNER_LOCK_H
#define SPIRAL_OWNER_LOCK_H

#include <stddef.h>

typedef struct {
    int held;          /* 1 while the lock is ours */
    int fd;            /* the open lock file */
} OwnerLock;

/* Takes the lock of file `path` (created if missing; its folder must exist)
 * and writes `owner` ("pid N, ...") into it. Returns 0; 1 if another live
 * process holds it, its owner line in holder (holder_size bytes; "" if
 * unreadable), spiral_error not set; -1 with spiral_error on an I/O error. */
int owner_lock_acquire(OwnerLock *lock, const char *path, const char *owner, char *holder,
                       size_t holder_size);

/* Releases the lock (nothing if not held). The file stays. */
void owner_lock_release(OwnerLock *lock);

/* 1 if a live process holds the lock of file `path`, 0 if none does (or
 * there is no such file). *holder gets its owner line when held
 * (holder_size bytes; may be NULL). */
int owner_lock_probe(const char *path, char *holder, size_t holder_size);

#endif
