/*
 * mia_lines: byte-level screening of a buffer of JSON lines (the compiled side of
 * mia_pipeline/schemas/lines.py, which keeps the numpy reference of both functions and is the
 * place their contracts are written down). Loaded with ctypes by native.py (GIL released).
 */
#include <stdint.h>
#include <string.h>

/* Number of '\n' bytes in data[lo, hi). */
int64_t ml_count_newlines(const uint8_t *data, int64_t lo, int64_t hi) {
    int64_t n = 0;
    const uint8_t *p = data + lo, *end = data + hi;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        n++;
        p = nl + 1;
    }
    return n;
}

/* out[k] = 1 + position of the k-th '\n' in data[lo, hi) (the end of each complete line);
 * out holds ml_count_newlines(data, lo, hi) slots. */
void ml_line_ends(const uint8_t *data, int64_t lo, int64_t hi, int64_t *out) {
    const uint8_t *p = data + lo, *end = data + hi;
    int64_t k = 0;
    while (p < end) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        out[k++] = (int64_t)(nl - data) + 1;
        p = nl + 1;
    }
}

static inline uint64_t word_at(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);  /* little-endian hosts only: checked by native.py */
    return w;
}

/* The kind guess of lines.sniff_kinds for lines of at least 18 bytes: a line starting with
 * {"kind":"NAME or {"kind": "NAME gets the index k of the pattern whose masked 8 bytes match the
 * name's first 8 bytes (the last match wins), otherwise -1. Shorter lines get -1. */
void ml_sniff(const uint8_t *data, const int64_t *starts, const int64_t *lens, int64_t n, uint64_t head,
              const uint64_t *masks, const uint64_t *patterns, int32_t n_kinds, int16_t *out) {
    for (int64_t i = 0; i < n; i++) {
        out[i] = -1;
        if (lens[i] < 18) continue;
        const uint8_t *s = data + starts[i];
        if (word_at(s) != head) continue;
        const uint8_t *name;
        if (s[8] == '"') name = s + 9;
        else if (s[8] == ' ' && s[9] == '"') name = s + 10;
        else continue;
        uint64_t w = word_at(name);
        for (int32_t k = 0; k < n_kinds; k++)
            if ((w & masks[k]) == patterns[k]) out[i] = (int16_t)k;
    }
}
