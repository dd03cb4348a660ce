/*
 * run_lock.c: the per-run owner lock of run_lock.h (base/owner_lock.h).
 */
#include "run_lock.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

int run_lock_acquire(RunLock *lock, const char *dir, const char *run_name) {
    char path[1200], owner[400], holder[300];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    snprintf(owner, sizeof owner, "pid %ld, run %s", (long)getpid(), run_name);
    int taken = owner_lock_acquire(lock, path, owner, holder, sizeof holder);
    if (taken == 1)
        return spiral_error("%s is in use by another process (%s); one process at a time "
                            "may train a run or write to its checkpoint folder", dir,
                            holder[0] ? holder : "owner unknown");
    return taken;
}

void run_lock_release(RunLock *lock) { owner_lock_release(lock); }

int run_lock_probe(const char *dir, char *owner, size_t owner_size) {
    char path[1200];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    return owner_lock_probe(path, owner, owner_size);
}
/* 1 if `name` ends in ".tmp." followed by digits only. */
static int is_temporary(const char *name) {
    const char *tag = strstr(name, ".tmp.");
    if (!tag) return 0;
    const char *digits = tag + 5;
    if (!*digits) return 0;
    for (const char *c = digits; *c; c++)
        if (*c < '0' || *c > '9') return 0;
    return 1;
}

int run_dir_remove_temporaries(const char *dir, int *removed) {
    *removed = 0;
    DIR *d = opendir(dir);
    if (!d) return spiral_error("%s: cannot list: %s", dir, strerror(errno));
    struct dirent *entry;
    int status = 0;
    while ((entry = readdir(d))) {
        if (!is_temporary(entry->d_name)) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        if (unlink(path) != 0 && errno != ENOENT) {
            status = spiral_error("%s: cannot remove a leftover temporary file: %s", path,
                                  strerror(errno));
            break;
        }
        (*removed)++;
    }
    closedir(d);
    return status;
}
