/*
 * mia_hash: the per-leaf kernels of content_hash (mia_pipeline/schemas/hashing.py), fused into one
 * pass over Arrow buffers each. hashing.py defines the hash and keeps a numpy implementation of
 * every kernel; this file must give bit-identical results (mia_pipeline_tests/schemas/test_hashing.py
 * compares both on random tables). Loaded with ctypes by native.py, which releases the GIL.
 *
 *   mix(z)            splitmix64 finaliser
 *   bytes hash        h = mix(len ^ GOLD); for each 8-byte little-endian word (zero padded): h = mix(h ^ w)
 *   scalar term       mix(value_bits ^ key)         (key = hash of the field's path)
 *   list term         mix(sum_j mix(item_j ^ mix(j + key)) ^ mix(len ^ key ^ LIST))
 *                     item_j = mix(bits) / mix(bytes hash), or NULL_ITEM for a null item
 *
 * Validity bitmaps are Arrow's (bit i of the array at bit offset `voff + i`; NULL = all valid).
 * Every kernel ADDS its terms to `total` (wrapping), skipping null rows, as the numpy code does.
 */
#include <stdint.h>
#include <string.h>

#define M1 0xBF58476D1CE4E5B9ULL
#define M2 0x94D049BB133111EBULL
#define GOLD 0x9E3779B97F4A7C15ULL
#define LIST_TAG 0x4C4953540002ULL
#define NULL_ITEM 0x4E554C4C0003ULL

static inline uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * M1;
    z = (z ^ (z >> 27)) * M2;
    return z ^ (z >> 31);
}

static inline int valid_at(const uint8_t *validity, int64_t bit) {
    return validity == NULL || ((validity[bit >> 3] >> (bit & 7)) & 1);
}

static inline uint64_t bytes_hash(const uint8_t *p, int64_t len) {
    uint64_t h = mix((uint64_t)len ^ GOLD);
    int64_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);  /* little-endian hosts only (x86-64, aarch64): checked by native.py */
        h = mix(h ^ w);
    }
    if (i < len) {
        uint64_t w = 0;
        memcpy(&w, p + i, (size_t)(len - i));
        h = mix(h ^ w);
    }
    return h;
}

static inline int64_t offset_at(const void *offsets, int wide, int64_t i) {
    return wide ? ((const int64_t *)offsets)[i] : (int64_t)((const int32_t *)offsets)[i];
}

/* total[i] += mix(values[i] ^ key) for valid rows; values are the 64 bits of each value. */
void mh_fixed(uint64_t *total, const uint64_t *values, const uint8_t *validity, int64_t voff, int64_t n,
              uint64_t key) {
    if (validity == NULL) {
        for (int64_t i = 0; i < n; i++) total[i] += mix(values[i] ^ key);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (valid_at(validity, voff + i)) total[i] += mix(values[i] ^ key);
}

/* total[i] += mix(bytes_hash(string i) ^ key) for valid rows; offsets int32 (wide = 0) or int64. */
void mh_string(uint64_t *total, const void *offsets, int wide, const uint8_t *data, const uint8_t *validity,
               int64_t voff, int64_t n, uint64_t key) {
    for (int64_t i = 0; i < n; i++) {
        if (!valid_at(validity, voff + i)) continue;
        int64_t a = offset_at(offsets, wide, i), b = offset_at(offsets, wide, i + 1);
        total[i] += mix(bytes_hash(data + a, b - a) ^ key);
    }
}

/* out[j] = item hash of each list item: mix(bits), mix(bytes hash), NULL_ITEM where null.
   String items when data != NULL (then values is their offsets, int32 or int64 by `wide`). */
void mh_items(uint64_t *out, const void *values, int wide, const uint8_t *data, const uint8_t *validity,
              int64_t voff, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        if (!valid_at(validity, voff + j)) {
            out[j] = NULL_ITEM;
        } else if (data != NULL) {
            int64_t a = offset_at(values, wide, j), b = offset_at(values, wide, j + 1);
            out[j] = mix(bytes_hash(data + a, b - a));
        } else {
            out[j] = mix(((const uint64_t *)values)[j]);
        }
    }
}

/* total[i] += list term of row i for valid rows. `offsets` (int32 or int64) index the list's child;
   items[j] is the item hash of child position base + j (only the rows' range is hashed). */
void mh_list(uint64_t *total, const void *offsets, int wide, const uint8_t *validity, int64_t voff, int64_t n,
             const uint64_t *items, int64_t base, uint64_t key) {
    uint64_t pos_hash[16];
    for (int j = 0; j < 16; j++) pos_hash[j] = mix((uint64_t)j + key);
    for (int64_t i = 0; i < n; i++) {
        if (!valid_at(validity, voff + i)) continue;
        int64_t a = offset_at(offsets, wide, i) - base, b = offset_at(offsets, wide, i + 1) - base;
        uint64_t sum = 0;
        for (int64_t j = 0; j < b - a; j++)
            sum += mix(items[a + j] ^ (j < 16 ? pos_hash[j] : mix((uint64_t)j + key)));
        total[i] += mix(sum ^ mix((uint64_t)(b - a) ^ key ^ LIST_TAG));
    }
}

/* out[16*i .. 16*i+15] = lowercase hex of mix(total[i]), most significant nibble first. */
void mh_finish(const uint64_t *total, int64_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (int64_t i = 0; i < n; i++) {
        uint64_t h = mix(total[i]);
        for (int k = 15; k >= 0; k--, h >>= 4) out[16 * i + k] = hex[h & 15];
    }
}
