/*
 * jsontext.h: reals and JSON values as text, for error messages ("expected
 * an integer, got 2.5") and for the parameter JSON that datasets store.
 */
#ifndef SPIRAL_JSONTEXT_H
#define SPIRAL_JSONTEXT_H

#include <jansson.h>
#include <stddef.h>

/* x with the fewest significant digits that read back as x ("0.1",
 * "1e-05", "64"). */
void real_shortest(char *buf, size_t cap, double x);

/* x for a message: integral values as "64.0" (so the reader sees a real was
 * given), others as real_shortest. */
void real_for_message(char *buf, size_t cap, double x);

/* A JSON value for the "got ..." part of a message: numbers and literals as
 * written, strings and containers by their kind ("a string"). Returns buf
 * or a constant string. */
const char *json_describe(const json_t *value, char *buf, size_t cap);

/* A JSON value's kind for messages like "expected an array, got a string":
 * "an object", "an array", "a string", "an integer", "a real number",
 * "true", "false", "null". */
const char *json_type_name(const json_t *value);

#endif
