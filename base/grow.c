/*
 * grow.c: growing arrays (grow.h).
 */
#include "grow.h"

#include <limits.h>
#include <stdlib.h>

#include "error.h"

int grow_array(void **items, int count, int *capacity, size_t size) {
    if (count < *capacity) return 0;
    if (*capacity > INT_MAX / 2) return spiral_error("out of memory: more than %d rows", *capacity);
    int wanted = *capacity ? 2 * *capacity : 16;
    void *grown = realloc(*items, (size_t)wanted * size);
    if (!grown) return spiral_error("out of memory growing a table to %d rows", wanted);
    *items = grown;
    *capacity = wanted;
    return 0;
}
