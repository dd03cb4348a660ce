/*
 * owner_lock.c: the advisory owner lock of owner_lock.h.
 */
#include "owner_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

/* The first line of an open lock file into holder (size bytes); "" when it
 * cannot be read. */
static void read_holder(int fd, char *holder, size_t size) {
    ssize_t n = pread(fd, holder, size - 1, 0);
    holder[n > 0 ? n : 0] = 0;
    holder[strcspn(holder, "\n")] = 0;
}

int owner_lock_acquire(OwnerLock *lock, const char *path, const char *owner, char *holder,
                       size_t holder_size) {
    lock->held = 0;
    if (holder && holder_size) holder[0] = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return spiral_error("%s: cannot open the lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        /* the owner writes its line just after taking the lock: give it
         * up to 0.1 s to appear */
        for (int tries = 0; saved == EWOULDBLOCK && holder && holder_size && tries < 100; tries++) {
            read_holder(fd, holder, holder_size);
            if (holder[0]) break;
            nanosleep(&(struct timespec){0, 1000000}, NULL);
        }
        close(fd);
        if (saved == EWOULDBLOCK) return 1;
        return spiral_error("%s: cannot lock: %s", path, strerror(saved));
    }
    char line[512];
    int len = snprintf(line, sizeof line, "%s\n", owner);
    if (len >= (int)sizeof line) len = (int)sizeof line - 1;
    if (ftruncate(fd, 0) != 0 || pwrite(fd, line, (size_t)len, 0) != len) {
        int saved = errno;
        close(fd);
        return spiral_error("%s: cannot write the lock file: %s", path, strerror(saved));
    }
    lock->fd = fd;
    lock->held = 1;
    return 0;
}

void owner_lock_release(OwnerLock *lock) {
    if (!lock->held) return;
    close(lock->fd);  /* closing the descriptor drops the flock */
    lock->held = 0;
}

int owner_lock_probe(const char *path, char *holder, size_t holder_size) {
    if (holder && holder_size) holder[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    int held = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
        held = errno == EWOULDBLOCK;
        if (held && holder && holder_size) read_holder(fd, holder, holder_size);
    }
    close(fd);  /* drops the shared lock if we took it */
    return held;
}
