/*
 * jsontext.c: the formatting of jsontext.h.
 */
#include "jsontext.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

void real_shortest(char *buf, size_t cap, double x) {
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(buf, cap, "%.*g", precision, x);
        if (strtod(buf, NULL) == x) return;
    }
}

void real_for_message(char *buf, size_t cap, double x) {
    if (x == floor(x) && fabs(x) < 1e16) {
        snprintf(buf, cap, "%.1f", x);
        return;
    }
    real_shortest(buf, cap, x);
}

const char *json_describe(const json_t *value, char *buf, size_t cap) {
    switch (json_typeof(value)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
        return buf;
    case JSON_REAL:
        real_for_message(buf, cap, json_real_value(value));
        return buf;
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}

const char *json_type_name(const json_t *value) {
    switch (json_typeof(value)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "an unknown JSON value";
}
