/*
 * run_lock.c: the per-run advisory lock of run_lock.h.
 */
#include "run_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "error.h"

/* The first line of an open LOCK file ("pid N, run NAME") into owner
 * (size bytes); "" when it cannot be read. */
static void read_owner(int fd, char *owner, size_t size) {
    ssize_t n = pread(fd, owner, size - 1, 0);
    owner[n > 0 ? n : 0] = 0;
    owner[strcspn(owner, "\n")] = 0;
}

int run_lock_acquire(RunLock *lock, const char *dir, const char *run_name) {
    char path[1200];
    lock->held = 0;
    snprintf(path, sizeof path, "%s/LOCK", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return spiral_error("%s: cannot open the run lock: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        char owner[300];
        read_owner(fd, owner, sizeof owner);
        close(fd);
        if (saved == EWOULDBLOCK)
            return spiral_error("%s is in use by another process (%s); one process at a time "
                                "may train a run or write to its checkpoint folder", dir,
                                owner[0] ? owner : "owner unknown");
        return spiral_error("%s: cannot lock: %s", path, strerror(saved));
    }
    char owner[300];
    int len = snprintf(owner, sizeof owner, "pid %ld, run %s\n", (long)getpid(), run_name);
    if (ftruncate(fd, 0) != 0 || pwrite(fd, owner, (size_t)len, 0) != len) {
        int saved = errno;
        close(fd);
        return spiral_error("%s: cannot write the run lock: %s", path, strerror(saved));
    }
    lock->fd = fd;
    lock->held = 1;
    return 0;
}

void run_lock_release(RunLock *lock) {
    if (!lock->held) return;
    close(lock->fd);  /* closing the descriptor drops the flock */
    lock->held = 0;
}

int run_lock_probe(const char *dir, char *owner, size_t owner_size) {
    char path[1200];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    if (owner && owner_size) owner[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        held = errno == EWOULDBLOCK;
        if (held && owner && owner_size) read_owner(fd, owner, owner_size);
    }
    close(fd);  /* drops the shared lock if we took it */
    return held;
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
