/*
 * mia_jsonl: a schema-driven decoder of JSON lines into Arrow column buffers (the fast path of
 * mia_pipeline.schemas.parse_lines). Loaded with ctypes by mia_pipeline/schemas/native.py.
 *
 * Contract: each line is decoded against one kind's parse schema (a tree of STRUCT / LIST /
 * STRING / INT64 / DOUBLE / BOOL nodes). A line is either ACCEPTED -- every key known, every value
 * of its field's JSON type, no duplicate key, nothing after the object -- and appended to the
 * columns, or DECLINED and rolled back, leaving the columns as they were. Declining is always
 * safe: declined lines go to the Arrow reader and then to json.loads, which name the reason. So the
 * decoder never has to explain an error, only to accept exactly what the reference path
 * (slowpath.py) would accept with the same values:
 *   - strings: JSON strings, escapes decoded (\uXXXX incl. surrogate pairs; a lone surrogate is
 *     declined), raw control characters declined; input bytes are valid UTF-8 (checked upstream);
 *   - int64: JSON integers only (no fraction, no exponent), within int64; "-0" declined;
 *   - double: any JSON number, correctly rounded (Clinger's exact fast path, else strtod_l in the
 *     "C" locale); non-finite results declined;
 *   - bool: true / false;  null: a null slot for any type;  lists: null items declined;
 *   - keys with escapes, unknown keys, duplicate keys: declined (the slow path keeps unknown keys
 *     in `extra`).
 * Nesting follows the schema only, so recursion depth is bounded by the schema's depth.
 */
#define _GNU_SOURCE
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { T_STRUCT = 1, T_LIST = 2, T_STRING = 3, T_INT64 = 4, T_DOUBLE = 5, T_BOOL = 6 };

typedef struct {          /* one schema node, as laid out by native.py (ctypes) */
    int32_t type;
    int32_t n_children;   /* struct: fields; list: 1 */
    int32_t first_child;  /* index of the first child node (children are contiguous) */
    int32_t name_off;     /* name bytes in the names blob */
    int32_t name_len;
} mj_node;

typedef struct {
    uint8_t *p;
    int64_t len, cap;
} mj_buf;

typedef struct {          /* one column per node, read by native.py */
    int64_t count;        /* slots: rows, or items for the child of a list */
    int64_t null_count;
    mj_buf validity;      /* bitmap, bit i = slot i is valid */
    mj_buf values;        /* int64/double: 8 bytes a slot; bool: bitmap; string/list: int32 offsets */
    mj_buf data;          /* string bytes */
} mj_col;

typedef struct {
    int64_t count, null_count, data_len;
} mj_mark;

typedef struct {
    int32_t n_nodes;
    const mj_node *nodes;
    const char *names;
    mj_col *cols;
    mj_mark *marks;
    int oom;
} mj_result;

static locale_t c_locale;

static int grow_slow(mj_buf *b, int64_t need) {
    int64_t cap = b->cap ? b->cap : 256;
    while (cap < need) cap *= 2;
    uint8_t *p = realloc(b->p, (size_t)cap);
    if (!p) return 0;
    memset(p + b->cap, 0, (size_t)(cap - b->cap));
    b->p = p;
    b->cap = cap;
    return 1;
}

static inline int grow(mj_buf *b, int64_t need) {
    return __builtin_expect(need <= b->cap, 1) ? 1 : grow_slow(b, need);
}

/* ------------------------------------------------------------------ appends */

static inline int set_valid(mj_result *r, mj_col *c, int valid) {
    int64_t i = c->count;
    if (!grow(&c->validity, i / 8 + 1)) { r->oom = 1; return 0; }
    if (valid) c->validity.p[i >> 3] |= (uint8_t)(1u << (i & 7));
    else { c->validity.p[i >> 3] &= (uint8_t)~(1u << (i & 7)); c->null_count++; }
    return 1;
}


static int append_fixed(mj_result *r, mj_col *c, const void *v, int valid) {
    if (!set_valid(r, c, valid)) return 0;
    if (!grow(&c->values, (c->count + 1) * 8)) { r->oom = 1; return 0; }
    if (valid) memcpy(c->values.p + c->count * 8, v, 8);
    else memset(c->values.p + c->count * 8, 0, 8);
    c->count++;
    return 1;
}

static int append_bool(mj_result *r, mj_col *c, int value, int valid) {
    if (!set_valid(r, c, valid)) return 0;
    int64_t i = c->count;
    if (!grow(&c->values, i / 8 + 1)) { r->oom = 1; return 0; }
    if (valid && value) c->values.p[i >> 3] |= (uint8_t)(1u << (i & 7));
    else c->values.p[i >> 3] &= (uint8_t)~(1u << (i & 7));
    c->count++;
    return 1;
}

/* offsets[count + 1] = end; used by strings (end = data length) and lists (end = child count) */
static int append_offset(mj_result *r, mj_col *c, int64_t end, int valid) {
    if (end > INT32_MAX) { r->oom = 1; return 0; }
    if (!set_valid(r, c, valid)) return 0;
    if (!grow(&c->values, (c->count + 2) * 4)) { r->oom = 1; return 0; }
    int32_t e = (int32_t)end;
    memcpy(c->values.p + (c->count + 1) * 4, &e, 4);
    c->count++;
    return 1;
}

static int append_null(mj_result *r, int node) {
    const mj_node *n = &r->nodes[node];
    mj_col *c = &r->cols[node];
    switch (n->type) {
    case T_STRUCT:
        if (!set_valid(r, c, 0)) return 0;
        c->count++;
        for (int k = 0; k < n->n_children; k++)
            if (!append_null(r, n->first_child + k)) return 0;
        return 1;
    case T_LIST:
        return append_offset(r, c, r->cols[n->first_child].count, 0);
    case T_STRING:
        return append_offset(r, c, c->data.len, 0);
    case T_BOOL:
        return append_bool(r, c, 0, 0);
    default: {
        int64_t zero = 0;
        return append_fixed(r, c, &zero, 0);
    }
    }
}

/* ------------------------------------------------------------------ lexing */

typedef struct {
    const uint8_t *p, *end;
} cursor;

static inline void skip_ws(cursor *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) s->p++;
}

static inline int literal(cursor *s, const char *word, size_t n) {
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0) return 0;
    s->p += n;
    return 1;
}

static inline int hexval(uint8_t ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static int hex4(cursor *s, uint32_t *out) {
    if (s->end - s->p < 4) return 0;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hexval(s->p[i]);
        if (h < 0) return 0;
        v = (v << 4) | (uint32_t)h;
    }
    s->p += 4;
    *out = v;
    return 1;
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
/* Nonzero when some byte of w is '"', '\\' or below 0x20 (bytes >= 0x80 never count). */
static inline uint64_t special_bytes(uint64_t w) {
    uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
    uint64_t zero_q = (q - ONES) & ~q, zero_b = (b - ONES) & ~b, low = (w - ONES * 0x20) & ~w;
    return (zero_q | zero_b | low) & HIGHS;
}

/* Decode a JSON string (cursor after the opening quote) onto the end of `b`. */
static int read_string(cursor *s, mj_buf *b, mj_result *r) {
    for (;;) {
        const uint8_t *start = s->p;
        /* 8 bytes at a time: stop at the first word holding '"', '\\' or a control character */
        while (s->end - s->p >= 8) {
            uint64_t w;
            memcpy(&w, s->p, 8);
            if (special_bytes(w)) break;
            s->p += 8;
        }
        while (s->p < s->end && *s->p != '"' && *s->p != '\\' && *s->p >= 0x20) s->p++;
        int64_t n = s->p - start;
        if (n) {
            if (!grow(b, b->len + n)) { r->oom = 1; return 0; }
            memcpy(b->p + b->len, start, (size_t)n);
            b->len += n;
        }
        if (s->p >= s->end) return 0;
        uint8_t ch = *s->p++;
        if (ch == '"') return 1;
        if (ch != '\\') return 0; /* raw control character */
        if (s->p >= s->end) return 0;
        uint8_t e = *s->p++;
        uint8_t out[4];
        int len = 1;
        switch (e) {
        case '"': out[0] = '"'; break;
        case '\\': out[0] = '\\'; break;
        case '/': out[0] = '/'; break;
        case 'b': out[0] = '\b'; break;
        case 'f': out[0] = '\f'; break;
        case 'n': out[0] = '\n'; break;
        case 'r': out[0] = '\r'; break;
        case 't': out[0] = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!hex4(s, &cp)) return 0;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return 0; /* lone low surrogate */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo;
                if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') return 0;
                s->p += 2;
                if (!hex4(s, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp < 0x80) { out[0] = (uint8_t)cp; }
            else if (cp < 0x800) { out[0] = (uint8_t)(0xC0 | (cp >> 6)); out[1] = (uint8_t)(0x80 | (cp & 0x3F)); len = 2; }
            else if (cp < 0x10000) {
                out[0] = (uint8_t)(0xE0 | (cp >> 12)); out[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (uint8_t)(0x80 | (cp & 0x3F)); len = 3;
            } else {
                out[0] = (uint8_t)(0xF0 | (cp >> 18)); out[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
                out[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (uint8_t)(0x80 | (cp & 0x3F)); len = 4;
            }
            break;
        }
        default: return 0;
        }
        if (!grow(b, b->len + len)) { r->oom = 1; return 0; }
        memcpy(b->p + b->len, out, (size_t)len);
        b->len += len;
    }
}

static const double POW10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A JSON number (strict grammar). *is_int: no fraction and no exponent; then *fits says whether
 * *ival holds it (int64 range). With want_double, *dval is the correctly rounded double. */
static int read_number(cursor *s, int want_double, int64_t *ival, int *fits, double *dval, int *is_int) {
    const uint8_t *start = s->p;
    int neg = 0;
    if (s->p < s->end && *s->p == '-') { neg = 1; s->p++; }
    if (s->p >= s->end) return 0;
    uint64_t mant = 0;  /* first significant digits */
    int nd = 0;         /* digits in mant (leading zeros excluded) */
    int too_many = 0;   /* more than 19 significant digits: strtod decides */
    int exp10 = 0;
    if (*s->p == '0') {
        s->p++;
        if (s->p < s->end && *s->p >= '0' && *s->p <= '9') return 0; /* leading zero */
    } else if (*s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (nd < 19) { mant = mant * 10 + (uint64_t)(*s->p - '0'); nd++; }
            else { too_many = 1; exp10++; }
            s->p++;
        }
    } else {
        return 0;
    }
    *is_int = 1;
    if (s->p < s->end && *s->p == '.') {
        *is_int = 0;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            int d = *s->p - '0';
            if (nd == 0 && d == 0) exp10--;                       /* leading zeros: 0.000123 */
            else if (nd < 19) { mant = mant * 10 + (uint64_t)d; nd++; exp10--; }
            else too_many = 1;
            s->p++;
        }
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        *is_int = 0;
        s->p++;
        int eneg = 0;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) { eneg = *s->p == '-'; s->p++; }
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return 0;
        int e = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (e < 100000) e = e * 10 + (*s->p - '0');
            s->p++;
        }
        exp10 += eneg ? -e : e;
    }
    if (*is_int) {
        if (neg && mant == 0) return 0; /* "-0": leave it to the reference path */
        *fits = 0;
        if (!too_many) {
            if (!neg && mant <= (uint64_t)INT64_MAX) { *ival = (int64_t)mant; *fits = 1; }
            else if (neg && mant <= (uint64_t)INT64_MAX) { *ival = -(int64_t)mant; *fits = 1; }
            else if (neg && mant == (uint64_t)INT64_MAX + 1) { *ival = INT64_MIN; *fits = 1; }
        }
    }
    if (!want_double) return 1;
    if (!too_many && nd <= 15 && exp10 >= -22 && exp10 <= 22) {
        /* Clinger: mant and 10^|exp10| are exact doubles, so one operation rounds correctly */
        double d = (double)mant;
        d = exp10 < 0 ? d / POW10[-exp10] : d * POW10[exp10];
        *dval = neg ? -d : d;
    } else {
        char tmp[128];
        size_t n = (size_t)(s->p - start);
        if (n >= sizeof tmp) return 0;
        memcpy(tmp, start, n);
        tmp[n] = 0;
        char *endp;
        *dval = strtod_l(tmp, &endp, c_locale);
        if (endp != tmp + n) return 0;
    }
    return isfinite(*dval) ? 1 : 0;
}

/* ------------------------------------------------------------------ values */

static int read_value(mj_result *r, int node, cursor *s);

/* a[0..n) == b[0..n), inlined 8 bytes at a time (keys are short: a libc call would cost more) */
static inline int same_bytes(const uint8_t *a, const uint8_t *b, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x != y) return 0;
    }
    for (; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* The child of `n` named by the key at the cursor (just after its opening quote), cursor moved
 * past the closing quote; -1 for an unknown key or one with escapes. Writers keep a fixed key
 * order, so the field after the previous one (`hint`) is tried first without scanning the key. */
static int find_key(mj_result *r, const mj_node *n, cursor *s, int hint) {
    if (hint < n->n_children) {
        const mj_node *ch = &r->nodes[n->first_child + hint];
        size_t len = (size_t)ch->name_len;
        if ((size_t)(s->end - s->p) > len && s->p[len] == '"' && same_bytes(s->p, (const uint8_t *)r->names + ch->name_off, len)) {
            s->p += len + 1;
            return hint;
        }
    }
    const uint8_t *key = s->p;
    while (s->p < s->end && *s->p != '"' && *s->p != '\\') s->p++;
    if (s->p >= s->end || *s->p != '"') return -1;
    size_t klen = (size_t)(s->p - key);
    s->p++;
    for (int k = 0; k < n->n_children; k++) {
        const mj_node *ch = &r->nodes[n->first_child + k];
        if ((size_t)ch->name_len == klen && same_bytes((const uint8_t *)r->names + ch->name_off, key, klen)) return k;
    }
    return -1;
}

static int read_object(mj_result *r, int node, cursor *s, int append_validity) {
    /* cursor just after '{' */
    const mj_node *n = &r->nodes[node];
    uint64_t seen = 0;
    int hint = 0;
    if (append_validity) {
        mj_col *c = &r->cols[node];
        if (!set_valid(r, c, 1)) return 0;
        c->count++;
    }
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
    } else {
        for (;;) {
            skip_ws(s);
            if (s->p >= s->end || *s->p != '"') return 0;
            s->p++;
            int found = find_key(r, n, s, hint);
            if (found < 0) return 0; /* unknown or escaped key */
            hint = found + 1;
            if (seen & (1ull << found)) return 0; /* duplicate key */
            seen |= 1ull << found;
            skip_ws(s);
            if (s->p >= s->end || *s->p != ':') return 0;
            s->p++;
            skip_ws(s);
            if (!read_value(r, n->first_child + found, s)) return 0;
            skip_ws(s);
            if (s->p >= s->end) return 0;
            if (*s->p == ',') { s->p++; continue; }
            if (*s->p == '}') { s->p++; break; }
            return 0;
        }
    }
    for (int k = 0; k < n->n_children; k++)
        if (!(seen & (1ull << k)) && !append_null(r, n->first_child + k)) return 0;
    return 1;
}

static int read_value(mj_result *r, int node, cursor *s) {
    const mj_node *n = &r->nodes[node];
    mj_col *c = &r->cols[node];
    if (s->p >= s->end) return 0;
    if (*s->p == 'n') return literal(s, "null", 4) && append_null(r, node);
    switch (n->type) {
    case T_STRUCT:
        if (*s->p != '{') return 0;
        s->p++;
        return read_object(r, node, s, 1);
    case T_LIST: {
        if (*s->p != '[') return 0;
        s->p++;
        int child = n->first_child;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') { s->p++; }
        else {
            for (;;) {
                skip_ws(s);
                if (s->p >= s->end || *s->p == 'n') return 0; /* null item: decline */
                if (!read_value(r, child, s)) return 0;
                skip_ws(s);
                if (s->p >= s->end) return 0;
                if (*s->p == ',') { s->p++; continue; }
                if (*s->p == ']') { s->p++; break; }
                return 0;
            }
        }
        return append_offset(r, c, r->cols[child].count, 1);
    }
    case T_STRING:
        if (*s->p != '"') return 0;
        s->p++;
        if (!read_string(s, &c->data, r)) return 0;
        return append_offset(r, c, c->data.len, 1);
    case T_INT64: {
        int64_t iv = 0; int fits = 0, is_int = 0; double dv;
        if (!read_number(s, 0, &iv, &fits, &dv, &is_int) || !is_int || !fits) return 0;
        return append_fixed(r, c, &iv, 1);
    }
    case T_DOUBLE: {
        int64_t iv; int fits, is_int; double dv;
        if (!read_number(s, 1, &iv, &fits, &dv, &is_int)) return 0;
        return append_fixed(r, c, &dv, 1);
    }
    case T_BOOL:
        if (literal(s, "true", 4)) return append_bool(r, c, 1, 1);
        if (literal(s, "false", 5)) return append_bool(r, c, 0, 1);
        return 0;
    default:
        return 0;
    }
}

/* ------------------------------------------------------------------ API */

void *mj_new(int32_t n_nodes, const mj_node *nodes, const char *names) {
    if (!c_locale) c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    if (!c_locale) return NULL;
    mj_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->n_nodes = n_nodes;
    r->nodes = nodes;
    r->names = names;
    r->cols = calloc((size_t)n_nodes, sizeof *r->cols);
    r->marks = calloc((size_t)n_nodes, sizeof *r->marks);
    if (!r->cols || !r->marks) { free(r->cols); free(r->marks); free(r); return NULL; }
    for (int i = 0; i < n_nodes; i++) { /* offsets[0] = 0 for string and list columns */
        if ((nodes[i].type == T_STRING || nodes[i].type == T_LIST) && !grow(&r->cols[i].values, 4)) r->oom = 1;
    }
    return r;
}

/* Decode lines data[starts[i] : starts[i] + lens[i]] against node 0 (the root struct, whose own
 * validity is not kept: a row is a line). status[i] = 1 accepted, 0 declined. Returns the number of
 * accepted lines, or -1 when memory ran out (the result is then unusable). Needs no Python: the
 * caller releases the GIL. */
int64_t mj_decode(void *handle, const uint8_t *data, const int64_t *starts, const int64_t *lens,
                  int64_t n, uint8_t *status) {
    mj_result *r = handle;
    int64_t accepted = 0;
    if (r->oom) return -1;
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < r->n_nodes; k++) {
            r->marks[k].count = r->cols[k].count;
            r->marks[k].null_count = r->cols[k].null_count;
            r->marks[k].data_len = r->cols[k].data.len;
        }
        cursor s = {data + starts[i], data + starts[i] + lens[i]};
        skip_ws(&s);
        int ok = s.p < s.end && *s.p == '{';
        if (ok) {
            s.p++;
            ok = read_object(r, 0, &s, 0);
        }
        if (ok) {
            skip_ws(&s);
            ok = s.p == s.end;
        }
        if (r->oom) return -1;
        if (ok) {
            r->cols[0].count++;
            accepted++;
            status[i] = 1;
        } else {
            for (int k = 0; k < r->n_nodes; k++) {
                r->cols[k].count = r->marks[k].count;
                r->cols[k].null_count = r->marks[k].null_count;
                r->cols[k].data.len = r->marks[k].data_len;
            }
            status[i] = 0;
        }
    }
    return accepted;
}

/* Column `k`: counts and buffer addresses (bytes in use) for native.py to wrap zero-copy. */
void mj_column(void *handle, int32_t k, int64_t *counts, void **ptrs, int64_t *sizes) {
    mj_result *r = handle;
    mj_col *c = &r->cols[k];
    counts[0] = c->count;
    counts[1] = c->null_count;
    ptrs[0] = c->validity.p; sizes[0] = (c->count + 7) / 8;
    ptrs[1] = c->values.p;
    switch (r->nodes[k].type) {
    case T_STRING: case T_LIST: sizes[1] = (c->count + 1) * 4; break;
    case T_BOOL: sizes[1] = (c->count + 7) / 8; break;
    case T_STRUCT: sizes[1] = 0; break;
    default: sizes[1] = c->count * 8;
    }
    ptrs[2] = c->data.p; sizes[2] = c->data.len;
}

void mj_free(void *handle) {
    mj_result *r = handle;
    if (!r) return;
    for (int i = 0; i < r->n_nodes; i++) {
        free(r->cols[i].validity.p);
        free(r->cols[i].values.p);
        free(r->cols[i].data.p);
    }
    free(r->cols);
    free(r->marks);
    free(r);
}
