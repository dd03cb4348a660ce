/*
 * real.h: the floating-point type of every tensor in core/.
 *
 * spiral is compiled twice from the same sources: with `real` = float (the
 * library and the `spiral` binary) and with `real` = double (-DSPIRAL_DOUBLE,
 * used by the gradient tests so that central finite differences are exact to
 * about 1e-8 and any disagreement is a bug, not rounding).
 */
#ifndef SPIRAL_REAL_H
#define SPIRAL_REAL_H

#ifdef SPIRAL_DOUBLE
typedef double real;
#else
typedef float real;
#endif

#endif
