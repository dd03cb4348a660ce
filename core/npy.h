/*
 * npy.h: NumPy .npy files of float32, for handing arrays to Python, R or any
 * tool that reads NumPy's format (numpy.load), and for reference data in
 * tests.
 *
 * A version 1.0 file is
 *   6 bytes   "\x93NUMPY"
 *   2 bytes   version 1, 0
 *   2 bytes   H, the header length, unsigned little-endian
 *   H bytes   a Python dict literal, e.g.
 *             {'descr': '<f4', 'fortran_order': False, 'shape': (3, 5), }
 *             padded with spaces and ended by '\n' so that the data starts at
 *             a multiple of 64 bytes
 *   the data  numel float32 values, little-endian, row-major (C order)
 */
#ifndef SPIRAL_NPY_H
#define SPIRAL_NPY_H

#include <stdint.h>

#define NPY_MAX_DIMS 8

/* Writes data (row-major, `shape` of ndim dimensions, 0 <= ndim <=
 * NPY_MAX_DIMS, ndim 0 being a scalar) as a version 1.0 '<f4' file.
 * Written to a temporary file and renamed over path, so path never holds a
 * partial file. Returns 0 or -1 (spiral_error naming path). */
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

/* Reads a '<f4', C-order .npy file (versions 1.0, 2.0 and 3.0). On success
 * *data is a malloc'd array of the product of shape[0..*ndim) floats (the
 * caller frees it) and shape[] holds the dimensions. Other dtypes, Fortran
 * order, a malformed header or a data size that does not match the shape
 * are errors naming the file. On failure *data is NULL. Returns 0 or -1. */
/* The same for int32 data ('<i4'), e.g. labels beside exported states. */
int npy_write_i32(const char *path, const int32_t *data, int ndim, const int64_t *shape);

int npy_read_f32(const char *path, float **data, int *ndim, int64_t shape[NPY_MAX_DIMS]);

#endif
