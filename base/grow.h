/*
 * grow.h: the growing arrays that readers of the store fill row by row.
 */
#ifndef SPIRAL_GROW_H
#define SPIRAL_GROW_H

#include <stddef.h>

/* Makes room in *items (an array of *capacity items of `size` bytes) for
 * item number `count`: doubles the capacity (16 at first) when it is full.
 * Returns 0, or -1 with spiral_error("out of memory") leaving *items as it
 * was. */
int grow_array(void **items, int count, int *capacity, size_t size);

#endif
