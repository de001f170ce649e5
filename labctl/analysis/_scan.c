/* labctl.analysis._scan: compiled fast paths for the report's largest inputs.
 *
 * bpftrace(data, pos, have_ticks, ended, cur) scans the `bpftrace -f json` lines of io_by_second.bt in
 * `data` from `pos`, handling exactly the records the Python fast path in bpftrace.py handles (tick printf,
 * sum maps of plain `"comm": int` pairs, hist maps of min/max/count buckets) with the same arithmetic. It
 * stops at the first line it does not take (any other record, odd spacing, a number of 19+ digits, a full
 * table, a line without its newline) and returns where it stopped; Python parses that line and calls again.
 * The scan itself runs without the GIL, so ranges of one file can be scanned by several threads.
 */
#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#define NSUM 5
#define NHIST 2
#define MAXKEYS 256
#define MAXPAIRS 64
#define MAXDIGITS 18

static const char *const SUM_NAMES[NSUM] = {"read_bytes", "write_bytes", "read_calls", "write_calls",
                                            "fsync_calls"};
static const char *const HIST_NAMES[NHIST] = {"read_size", "write_size"};

static const char TICK[] = "{\"type\": \"printf\", \"data\": \"tick ";
static const char MAP[] = "{\"type\": \"map\", \"data\": {\"@";
static const char HIST[] = "{\"type\": \"hist\", \"data\": {\"@";
#define LIT(s) (sizeof(s) - 1)

typedef struct {
    char *data;
    size_t len, cap;
} Vec;

typedef struct {
    const char *key;
    Py_ssize_t len;
    int64_t count;
} KeyCount;

typedef struct {
    int64_t lo, hi, count;
    const char *text; /* where `{"min": lo, "max": hi, "count": ` was first read (this call's buffer) */
    Py_ssize_t text_len;
} Bucket;

typedef struct {
    Vec ticks;
    Vec sums[NSUM];
    double cur[NSUM];
    int have_ticks, any_tick;
    int64_t last_tick;
    KeyCount comms[NSUM][MAXKEYS];
    int ncomms[NSUM];
    Bucket hist[NHIST][MAXKEYS];
    int nhist[NHIST];
    unsigned stamp, mark[MAXKEYS]; /* mark[slot] == stamp: the slot is already used by the current line */
    Py_ssize_t lines;
    int nomem;
} State;

static __attribute__((noinline)) int vec_grow(Vec *v, size_t n) {
    size_t cap = v->cap ? v->cap * 2 : 4096;
    while (cap < v->len + n) cap *= 2;
    char *p = realloc(v->data, cap);
    if (p == NULL) return 0;
    v->data = p;
    v->cap = cap;
    return 1;
}

static inline __attribute__((always_inline)) int vec_push(Vec *v, const void *item, size_t n) {
    if (v->len + n > v->cap && !vec_grow(v, n)) return 0;
    memcpy(v->data + v->len, item, n);
    v->len += n;
    return 1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* float() of `-?digits(.digits)?` in [p, e), correctly rounded as Python does; 0 when too long to copy. */
static int decimal(const char *p, const char *e, double *out) {
    const char *q = p + (*p == '-');
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (const char *r = q; r < e; r++) {
        if (*r == '.') {
            frac = 0;
            continue;
        }
        if (digits < 19) m = m * 10 + (uint64_t)(*r - '0');
        digits++;
        if (frac >= 0) frac++;
    }
    if (frac < 0) frac = 0;
    double v;
    if (digits <= 19 && m <= ((uint64_t)1 << 53) && frac <= 22) {
        v = (double)m / POW10[frac]; /* both exact: one correctly rounded division */
    } else {
        char buf[80];
        if (e - q >= (Py_ssize_t)sizeof buf) return 0;
        memcpy(buf, q, e - q);
        buf[e - q] = '\0';
        v = strtod(buf, NULL); /* glibc's strtod rounds correctly, as Python's float() does */
    }
    *out = *p == '-' ? -v : v;
    return 1;
}

/* `digits(.digits*)?` at q (before e) as float() reads it: where it ends, or NULL when it is not there or too
 * long to convert. */
static const char *plain_decimal(const char *q, const char *e, double *out) {
    const char *t = q;
    while (q < e && is_digit(*q)) q++;
    if (q == t) return NULL;
    if (q < e && *q == '.')
        for (q++; q < e && is_digit(*q);) q++;
    return decimal(t, q, out) ? q : NULL;
}

/* Whether the n bytes at a and b are equal (memcmp(a, b, n) == 0) without a library call, in 8-byte words
 * (the hot comparisons are short: a comm, a bucket's text, a literal). */
static inline __attribute__((always_inline)) int same_bytes(const char *a, const char *b, size_t n) {
    uint64_t x, y;
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) return 0;
        }
        if (i == n) return 1;
        memcpy(&x, a + n - 8, 8); /* the tail, overlapping the last word */
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t u, v, w, z;
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        memcpy(&w, a + n - 4, 4);
        memcpy(&z, b + n - 4, 4);
        return u == v && w == z;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* Match the literal `s` (length n) at *p, advancing past it. */
static inline __attribute__((always_inline)) int lit(const char **p, const char *end, const char *s,
                                                     size_t n) {
    if ((size_t)(end - *p) < n || !same_bytes(*p, s, n)) return 0;
    *p += n;
    return 1;
}

/* 1 to 18 ASCII digits (so the value fits int64 with room for sums). */
static int uint_(const char **p, const char *end, int64_t *out) {
    const char *q = *p;
    int64_t v = 0;
    int n = 0;
    while (q < end && *q >= '0' && *q <= '9') {
        if (++n > MAXDIGITS) return 0;
        v = v * 10 + (*q++ - '0');
    }
    if (n == 0) return 0;
    *out = v;
    *p = q;
    return 1;
}

static int int_(const char **p, const char *end, int64_t *out) {
    int neg = *p < end && **p == '-';
    const char *q = *p + neg;
    if (!uint_(&q, end, out)) return 0;
    if (neg) *out = -*out;
    *p = q;
    return 1;
}

/* A fixed list of names found by a hash of (length, first, last character): a name that is not in the list
 * (most of a mountstats entry's op lines) mostly lands in an empty bucket and costs no comparison. */
#define NAME_BUCKETS 256
#define NAME_PER_BUCKET 4
typedef struct {
    const char *const *names;
    int n;
    size_t len[32];
    signed char bucket[NAME_BUCKETS][NAME_PER_BUCKET]; /* indices into names, -1 after the last */
} Names;

static unsigned name_hash(const char *p, size_t len) {
    return (unsigned)(len * 31u + (unsigned char)p[0] * 7u + (unsigned char)p[len - 1]) % NAME_BUCKETS;
}

/* Fill `t` for `names` (at most 32, none empty); 0 when a bucket overflows (a list this hash cannot take). */
static int names_init(Names *t, const char *const *names, int n) {
    t->names = names;
    t->n = n;
    memset(t->bucket, -1, sizeof t->bucket);
    for (int i = 0; i < n; i++) {
        t->len[i] = strlen(names[i]);
        signed char *b = t->bucket[name_hash(names[i], t->len[i])];
        int k = 0;
        while (k < NAME_PER_BUCKET && b[k] >= 0) k++;
        if (k == NAME_PER_BUCKET || t->len[i] == 0 || i >= 32) return 0;
        b[k] = (signed char)i;
    }
    return 1;
}

static Names SUM_TABLE, HIST_TABLE, OPS_TABLE; /* filled at import (OPS_TABLE once OPS is defined) */

/* The index of the name [p, q) among `t`'s names, or -1. */
static inline __attribute__((always_inline)) int name_index(const char *p, const char *q, const Names *t) {
    size_t len = (size_t)(q - p);
    if (len == 0) return -1;
    const signed char *b = t->bucket[name_hash(p, len)];
    for (int k = 0; k < NAME_PER_BUCKET && b[k] >= 0; k++)
        if (t->len[b[k]] == len && same_bytes(t->names[b[k]], p, len)) return b[k];
    return -1;
}

/* A fresh stamp for the slots one line uses (the marks are cleared when the counter wraps). */
static unsigned new_stamp(State *st) {
    if (++st->stamp == 0) {
        memset(st->mark, 0, sizeof st->mark);
        st->stamp = 1;
    }
    return st->stamp;
}

/* `{"type": "printf", "data": "tick <ns>\n"}` */
static int tick_line(State *st, const char *p, const char *end) {
    int64_t ns;
    if (!uint_(&p, end, &ns) || !lit(&p, end, "\\n\"}", 4) || p != end) return 0;
    if (st->have_ticks) {
        for (int m = 0; m < NSUM; m++) {
            if (!vec_push(&st->sums[m], &st->cur[m], sizeof(double))) return st->nomem = 1, 0;
            st->cur[m] = 0.0;
        }
    }
    if (!vec_push(&st->ticks, &ns, sizeof ns)) return st->nomem = 1, 0;
    st->have_ticks = st->any_tick = 1;
    st->last_tick = ns;
    return 1;
}

/* A map's `<name>": <open>` after its `@`: the name's index among `names` (p moved past `open`), or -1. */
static int map_name(const char **p, const char *end, const Names *names, const char *open) {
    const char *name = *p, *q = *p;
    while (q < end && *q != '"') q++;
    int i = name_index(name, q, names);
    if (i < 0 || !lit(&q, end, "\": ", 3) || !lit(&q, end, open, 1)) return -1;
    *p = q;
    return i;
}

/* `{"type": "map", "data": {"@<sum map>": {"<comm>": <n>, ...}}}` with at least one pair. */
static int map_line(State *st, const char *p, const char *end) {
    int m = map_name(&p, end, &SUM_TABLE, "{");
    if (m < 0) return 0;
    const char *keys[MAXPAIRS];
    Py_ssize_t lens[MAXPAIRS];
    int64_t vals[MAXPAIRS], total = 0;
    int n = 0, same[MAXPAIRS]; /* same[i]: key i is the table's key i (the usual order) */
    for (;;) {
        if (n == MAXPAIRS || !lit(&p, end, "\"", 1)) return 0;
        const char *k = p;
        const KeyCount *usual = n < st->ncomms[m] ? &st->comms[m][n] : NULL; /* lines repeat their comms */
        same[n] = usual && end - k > usual->len && same_bytes(k, usual->key, usual->len) && k[usual->len] == '"';
        if (same[n])
            p = k + usual->len; /* where the scan below would stop: a table key holds none of its stops */
        else
            while (p < end && *p != '"' && *p != '\\' && *p != '{' && *p != '}') p++;
        if (!lit(&p, end, "\": ", 3)) return 0;
        keys[n] = k;
        lens[n] = p - 3 - k;
        if (!uint_(&p, end, &vals[n]) || __builtin_add_overflow(total, vals[n], &total)) return 0;
        n++;
        if (lit(&p, end, "}}}", 3)) break;
        if (!lit(&p, end, ", ", 2)) return 0;
    }
    if (p != end) return 0;
    KeyCount *table = st->comms[m];
    int slot[MAXPAIRS], added = 0, nt = st->ncomms[m];
    unsigned stamp = new_stamp(st);
    for (int i = 0; i < n; i++) { /* check everything first: a line is taken whole or not at all */
        int j = same[i] || (i < nt && table[i].len == lens[i] && same_bytes(table[i].key, keys[i], lens[i]))
                    ? i : -1;
        for (int t = 0; j < 0 && t < nt; t++) /* lines repeat their comms in order: slot i is the usual one */
            if (table[t].len == lens[i] && same_bytes(table[t].key, keys[i], lens[i])) j = t;
        slot[i] = j;
        if (j >= 0) {
            int64_t sum;
            if (st->mark[j] == stamp || __builtin_add_overflow(table[j].count, vals[i], &sum)) return 0;
            st->mark[j] = stamp; /* a comm repeated within the line: left to Python */
            continue;
        }
        for (int k = 0; k < i; k++)
            if (slot[k] < 0 && lens[k] == lens[i] && same_bytes(keys[k], keys[i], lens[i])) return 0;
        added++;
    }
    if (st->ncomms[m] + added > MAXKEYS) return 0;
    for (int i = 0; i < n; i++) {
        if (slot[i] < 0) {
            slot[i] = st->ncomms[m]++;
            table[slot[i]] = (KeyCount){keys[i], lens[i], 0};
        }
        table[slot[i]].count += vals[i];
    }
    st->cur[m] += (double)total;
    return 1;
}

/* `{"type": "hist", "data": {"@<hist map>": [{"min": a, "max": b, "count": n}, ...]}}` */
static int hist_line(State *st, const char *p, const char *end) {
    int h = map_name(&p, end, &HIST_TABLE, "[");
    if (h < 0) return 0;
    Bucket got[MAXPAIRS];
    int n = 0;
    for (;;) {
        Bucket *b = &got[n];
        if (n == MAXPAIRS) return 0;
        const Bucket *usual = n < st->nhist[h] ? &st->hist[h][n] : NULL; /* lines repeat their buckets */
        b->text = p;
        if (usual && end - p > usual->text_len && same_bytes(p, usual->text, usual->text_len)) {
            b->lo = usual->lo; /* the same text reads as the same bounds */
            b->hi = usual->hi;
            p += usual->text_len;
        } else if (!lit(&p, end, "{\"min\": ", 8) || !int_(&p, end, &b->lo) || !lit(&p, end, ", \"max\": ", 9) ||
                   !int_(&p, end, &b->hi) || !lit(&p, end, ", \"count\": ", 11)) {
            return 0;
        }
        b->text_len = p - b->text;
        if (!uint_(&p, end, &b->count) || !lit(&p, end, "}", 1)) return 0;
        n++;
        if (lit(&p, end, "]}}", 3)) break;
        if (!lit(&p, end, ", ", 2)) return 0;
    }
    if (p != end || st->nhist[h] + n > MAXKEYS) return 0; /* n new buckets at most */
    Bucket *table = st->hist[h];
    int slot[MAXPAIRS], nt = st->nhist[h];
    unsigned stamp = new_stamp(st);
    for (int i = 0; i < n; i++) { /* check everything first: a line is taken whole or not at all */
        Bucket *b = &got[i];
        int j = i < nt && table[i].lo == b->lo && table[i].hi == b->hi ? i : -1;
        for (int t = 0; j < 0 && t < nt; t++) /* buckets come in order: slot i is the usual one */
            if (table[t].lo == b->lo && table[t].hi == b->hi) j = t;
        slot[i] = j;
        if (j >= 0) {
            int64_t sum;
            if (st->mark[j] == stamp || __builtin_add_overflow(table[j].count, b->count, &sum)) return 0;
            st->mark[j] = stamp; /* a bucket repeated within the line: left to Python */
            continue;
        }
        for (int k = 0; k < i; k++)
            if (slot[k] < 0 && got[k].lo == b->lo && got[k].hi == b->hi) return 0;
    }
    for (int i = 0; i < n; i++) {
        if (slot[i] < 0) {
            slot[i] = st->nhist[h]++;
            table[slot[i]] = (Bucket){got[i].lo, got[i].hi, 0, got[i].text, got[i].text_len};
        }
        table[slot[i]].count += got[i].count;
    }
    return 1;
}

static int line(State *st, int ended, const char *p, const char *end) {
    if (end - p < 12 || p[0] != '{') return 0;
    const char *q = p;
    if (lit(&q, end, TICK, LIT(TICK))) return tick_line(st, q, end);
    if (ended || !st->have_ticks) return 0;
    q = p;
    if (lit(&q, end, MAP, LIT(MAP))) return map_line(st, q, end);
    q = p;
    if (lit(&q, end, HIST, LIT(HIST))) return hist_line(st, q, end);
    return 0;
}

/* Buf: a read-only buffer object that owns a Vec's memory, so a scanner's output reaches Python (numpy,
 * array.frombytes) without a copy. */
typedef struct {
    PyObject_HEAD char *data;
    Py_ssize_t len;
} Buf;

static char empty[1];

static int buf_getbuffer(PyObject *self, Py_buffer *view, int flags) {
    Buf *b = (Buf *)self;
    return PyBuffer_FillInfo(view, self, b->data ? b->data : empty, b->len, 1, flags);
}

static void buf_dealloc(PyObject *self) {
    free(((Buf *)self)->data);
    Py_TYPE(self)->tp_free(self);
}

static PyBufferProcs buf_procs = {buf_getbuffer, NULL};

static PyTypeObject BufType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "labctl.analysis._scan.Buf",
    .tp_basicsize = sizeof(Buf),
    .tp_dealloc = buf_dealloc,
    .tp_as_buffer = &buf_procs,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A scanner's output column (read-only buffer).",
};

/* The Vec's content as a Buf, which takes its memory over (the Vec is left empty). */
static PyObject *vec_bytes(Vec *v) {
    Buf *b = PyObject_New(Buf, &BufType);
    if (b == NULL) return NULL;
    b->data = v->data;
    b->len = (Py_ssize_t)v->len;
    v->data = NULL;
    v->len = v->cap = 0;
    return (PyObject *)b;
}

static PyObject *result(State *st, Py_ssize_t pos) {
    PyObject *sums = PyTuple_New(NSUM), *cur = PyTuple_New(NSUM), *comms = PyTuple_New(NSUM);
    PyObject *hists = PyTuple_New(NHIST), *ticks = vec_bytes(&st->ticks);
    PyObject *out = NULL;
    if (!sums || !cur || !comms || !hists || !ticks) goto done;
    for (int m = 0; m < NSUM; m++) {
        PyObject *d = PyDict_New();
        PyObject *s = vec_bytes(&st->sums[m]), *c = PyFloat_FromDouble(st->cur[m]);
        PyTuple_SET_ITEM(sums, m, s);
        PyTuple_SET_ITEM(cur, m, c);
        PyTuple_SET_ITEM(comms, m, d);
        if (!d || !s || !c) goto done;
        for (int j = 0; j < st->ncomms[m]; j++) {
            KeyCount *kc = &st->comms[m][j];
            PyObject *k = PyBytes_FromStringAndSize(kc->key, kc->len), *v = PyLong_FromLongLong(kc->count);
            int bad = !k || !v || PyDict_SetItem(d, k, v) < 0;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (bad) goto done;
        }
    }
    for (int h = 0; h < NHIST; h++) {
        PyObject *d = PyDict_New();
        PyTuple_SET_ITEM(hists, h, d);
        if (!d) goto done;
        for (int j = 0; j < st->nhist[h]; j++) {
            Bucket *b = &st->hist[h][j];
            PyObject *k = Py_BuildValue("(LL)", (long long)b->lo, (long long)b->hi);
            PyObject *v = PyLong_FromLongLong(b->count);
            int bad = !k || !v || PyDict_SetItem(d, k, v) < 0;
            Py_XDECREF(k);
            Py_XDECREF(v);
            if (bad) goto done;
        }
    }
    out = Py_BuildValue("(nnOOONOO)", pos, st->lines, ticks, sums, cur,
                        st->any_tick ? PyLong_FromLongLong(st->last_tick) : Py_NewRef(Py_None), comms, hists);
done:
    Py_XDECREF(sums);
    Py_XDECREF(cur);
    Py_XDECREF(comms);
    Py_XDECREF(hists);
    Py_XDECREF(ticks);
    return out;
}

static PyObject *bpftrace(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t pos;
    int have_ticks, ended;
    double cur[NSUM];
    if (!PyArg_ParseTuple(args, "y*npp(ddddd):bpftrace", &buf, &pos, &have_ticks, &ended, &cur[0], &cur[1],
                          &cur[2], &cur[3], &cur[4]))
        return NULL;
    if (pos < 0 || pos > buf.len) {
        PyBuffer_Release(&buf);
        return PyErr_Format(PyExc_ValueError, "pos %zd outside the buffer", pos);
    }
    State *st = calloc(1, sizeof(State));
    if (st == NULL) {
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    memcpy(st->cur, cur, sizeof cur);
    st->have_ticks = have_ticks;
    const char *base = buf.buf, *p = base + pos, *end = base + buf.len;
    Py_BEGIN_ALLOW_THREADS
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        if (nl == NULL || !line(st, ended, p, nl)) break;
        st->lines++;
        p = nl + 1;
    }
    Py_END_ALLOW_THREADS
    PyObject *out = st->nomem ? PyErr_NoMemory() : result(st, p - base);
    free(st->ticks.data);
    for (int m = 0; m < NSUM; m++) free(st->sums[m].data);
    free(st);
    PyBuffer_Release(&buf);
    return out;
}

/* ---- mountstats ------------------------------------------------------------------------------------
 * mountstats(data, pos, end, prev_mono, prev_body) takes the bundle's snapshots in data[pos:end] (each
 * `#ts <epoch> <monotonic>\n<body>`, the body ending before the next `\n#ts `, which may straddle `end`),
 * each against the one before (the first against `prev_body`), and computes exactly what mountstats.py's
 * `interval_metrics` does for entries its `_fast_entry` reads. It stops at the first snapshot it cannot take
 * whole (another head or layout, a number of 31+ digits, a division Python would round differently) and
 * returns where that one starts; Python handles it and calls again.
 */
typedef __int128 i128;
#define NOPS 14
#define MAXF 16
#define MAXEV 64
#define MAXNUM 30
static const char *const OPS[NOPS] = {"READ", "WRITE", "COMMIT", "GETATTR", "LOOKUP", "OPEN", "CLOSE",
                                      "RENAME", "ACCESS", "LAYOUTGET", "LAYOUTCOMMIT", "LAYOUTRETURN",
                                      "READDIR", "SETATTR"};
static const char *const OPS_LOW[NOPS] = {"read", "write", "commit", "getattr", "lookup", "open", "close",
                                          "rename", "access", "layoutget", "layoutcommit", "layoutreturn",
                                          "readdir", "setattr"};

typedef struct {
    i128 age, bytes[8], ev[MAXEV], sends, bklog, ops[NOPS][MAXF];
    int nev, nbytes, nx, nf[NOPS], order[NOPS], nops;
    Py_ssize_t lines; /* newlines in the body (every line is walked once) */
} Snap;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline __attribute__((always_inline)) int num128(const char **p, const char *end, i128 *out) {
    const char *q = *p;
    uint64_t small = 0; /* the first 19 digits in 64 bits (faster), any more in 128 */
    int n = 0;
    while (q < end && n < 19 && *q >= '0' && *q <= '9') {
        small = small * 10 + (uint64_t)(*q++ - '0');
        n++;
    }
    i128 v = small;
    while (q < end && *q >= '0' && *q <= '9') {
        if (++n > MAXNUM) return 0;
        v = v * 10 + (*q++ - '0');
    }
    if (n == 0) return 0;
    *out = v;
    *p = q;
    return 1;
}

/* Space-separated digits over [p, end): Python's `_ints` for the inputs it takes; -1 when not that. */
static inline __attribute__((always_inline)) int ints(const char *p, const char *end, i128 *out, int cap) {
    int n = 0;
    for (;;) {
        while (p < end && *p == ' ') p++;
        if (p == end) return n;
        if (n == cap || !num128(&p, end, &out[n])) return -1;
        n++;
        if (p < end && *p != ' ') return -1;
    }
}

/* The line after the first `key` in [b, e) (as `field` in mountstats.py), or NULL. */
static const char *field(const char *b, const char *e, const char *key, const char **line_end) {
    const char *k = memmem(b, e - b, key, strlen(key));
    if (k == NULL) return NULL;
    k += strlen(key);
    const char *nl = memchr(k, '\n', e - k);
    if (nl == NULL) return NULL;
    *line_end = nl;
    return k;
}

static int token(const char **p, const char *end) { /* \S+ */
    const char *q = *p;
    while (q < end && !is_space(*q)) q++;
    if (q == *p) return 0;
    *p = q;
    return 1;
}

/* The value of `\t<key>:\t<value>` at line start p (key given with its ":\t"), or NULL. */
static const char *key_line(const char *p, const char *lend, const char *key, size_t n) {
    return (size_t)(lend - p) >= n + 1 && same_bytes(p + 1, key, n) ? p + 1 + n : NULL;
}

/* One `\txprt:\t<proto> <numbers>` line [p, lend): its sends and backlog added; 0 if not exactly that. */
static int xprt_line(const char *p, const char *lend, Snap *s) {
    const char *w = p + 7, *q = w;
    while (q < lend && is_word(*q)) q++;
    if (q == w || q >= lend || *q != ' ') return 0;
    const char *nums = ++q;
    while (q < lend && (is_digit(*q) || *q == ' ')) q++;
    if (q == nums || q != lend) return 0;
    i128 v[MAXF + 8];
    int n = ints(nums, q, v, MAXF + 8);
    if (n < 0) return 0;
    int udp = nums - 1 - w == 3 && same_bytes(w, "udp", 3);
    int i = udp ? 2 : 5, j = udp ? 5 : 8;
    if (n > j) {
        s->sends += v[i];
        s->bklog += v[j];
    }
    s->nx++;
    return 1;
}

/* One entry as `_fast_entry` reads it, in one pass over its lines; 0 when it is not exactly that layout. */
static int snap_parse(const char *b, Py_ssize_t len, Snap *s) {
    const char *e = b + len, *p = b;
    memset(s->nf, 0, sizeof s->nf);
    s->nops = 0;
    if (len < 7 || !same_bytes(b, "device ", 7)) return 0;
    const char *nl = memchr(b, '\n', len);
    if (nl == NULL) return 0;
    p += 7;
    if (!token(&p, nl) || !lit(&p, nl, " mounted on ", 12) || !token(&p, nl) ||
        !lit(&p, nl, " with fstype ", 13) || nl - p < 3 || !same_bytes(p, "nfs", 3) || !token(&p, nl))
        return 0;
    const char *ops_at = memmem(b, len, "per-op statistics", 17);
    if (ops_at == NULL) return 0;
    const char *ops_line = ops_at; /* the marker must start its line (after blanks): lines before it are whole */
    while (ops_line > nl + 1 && (ops_line[-1] == ' ' || ops_line[-1] == '\t')) ops_line--;
    if (ops_line[-1] != '\n') return 0;
    /* header lines: the first of each key (as body.index finds it), every xprt line, no second device (nfsv4
     * matters to Python's MountInfo only, and its line is whole here as field() needs) */
    const char *opts = NULL, *age = NULL, *events = NULL, *bytes = NULL, *age_end = NULL;
    const char *events_end = NULL, *bytes_end = NULL, *f;
    s->nx = 0;
    s->sends = s->bklog = 0;
    s->lines = 2; /* the device line, the marker's line */
    for (p = nl + 1; p < ops_line; s->lines++) {
        const char *lend = memchr(p, '\n', ops_line - p);
        if (lend - p >= 7 && same_bytes(p, "device ", 7)) return 0; /* a second entry */
        if (lend - p >= 4 && same_bytes(p, "#ts ", 4)) return 0;     /* another snapshot's head */
        if (*p == '\t') {
            if (!opts && (f = key_line(p, lend, "opts:\t", 6))) opts = f;
            else if (!age && (f = key_line(p, lend, "age:\t", 5))) age = f, age_end = lend;
            else if (!events && (f = key_line(p, lend, "events:\t", 8))) events = f, events_end = lend;
            else if (!bytes && (f = key_line(p, lend, "bytes:\t", 7))) bytes = f, bytes_end = lend;
            else if (key_line(p, lend, "xprt:\t", 6) && !xprt_line(p, lend, s)) return 0;
        }
        p = lend + 1;
    }
    if (!opts || !age || !events || !bytes) return 0; /* absent here: Python looks further */
    if (!num128(&age, age_end, &s->age) || age != age_end) return 0;
    if ((s->nev = ints(events, events_end, s->ev, MAXEV)) < 0) return 0;
    if ((s->nbytes = ints(bytes, bytes_end, s->bytes, 8)) != 8) return 0;
    for (const char *r = ops_at + 17; r < e && *r != '\n'; r++) /* nothing else on the marker's line */
        if (*r != ' ' && *r != '\t') return 0;
    /* per-op lines: `[ \t]*NAME: digits-and-spaces` or empty, up to the end */
    p = memchr(ops_at, '\n', e - ops_at);
    if (p == NULL) return 0;
    p++;
    while (p < e) {
        const char *l = p, *lend = memchr(p, '\n', e - p);
        if (lend == NULL) return 0;
        p = lend + 1;
        s->lines++;
        if (l == lend) continue;
        const char *q = l;
        while (q < lend && (*q == ' ' || *q == '\t')) q++;
        const char *name = q;
        while (q < lend && ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_')) q++;
        const char *name_end = q;
        if (name == name_end || !lit(&q, lend, ": ", 2)) return 0;
        int k = name_index(name, name_end, &OPS_TABLE);
        if (k < 0) { /* an op Python reads (`[ \t]NAME: digits\n`) can hide in the rest only after a ':' */
            if (memchr(q, ':', lend - q) != NULL) return 0;
            continue;
        }
        if (name == l) return 0; /* no blank before the name: Python's pattern would not see it */
        int n = ints(q, lend, s->ops[k], MAXF); /* -1 for anything but digits and blanks */
        if (n < 8) return 0; /* fewer than 8 counters (or none): Python's slow path decides */
        if (s->nf[k] == 0) s->order[s->nops++] = k;
        s->nf[k] = n;
    }
    return s->nf[0] > 0 && s->nf[1] > 0;
}

enum { M_RB, M_WB, M_RR, M_WR, M_AR, M_AW, M_MR, M_OPS, M_LAT = M_OPS + NOPS, M_RETR = M_LAT + 9, M_TMO,
       M_ERR, M_XC, M_XS, M_XB, M_FS, M_PR, M_PW, M_DT, NMETRIC };

static void metric_name(int id, char *buf, size_t n, const char **unit) {
    static const char *const base[] = {"nfs.read.bytes", "nfs.write.bytes", "nfs.read.bytes_rate",
                                       "nfs.write.bytes_rate", "nfs.app_read.bytes_rate",
                                       "nfs.app_write.bytes_rate", "nfs.mmap_read.bytes_rate"};
    static const char *const base_unit[] = {"B", "B", "B/s", "B/s", "B/s", "B/s", "B/s"};
    static const char *const tail[] = {"nfs.retrans", "nfs.timeouts", "nfs.errors", "nfs.xprt.count",
                                       "nfs.xprt.sends_rate", "nfs.xprt.backlog_avg", "nfs.fsync_rate",
                                       "nfs.pnfs.read_dispatch_rate", "nfs.pnfs.write_dispatch_rate",
                                       "nfs.interval_s"};
    static const char *const tail_unit[] = {"count", "count", "count", "count", "ops/s", "count", "ops/s",
                                            "ops/s", "ops/s", "s"};
    static const char *const lat[] = {"rtt_ms", "exe_ms", "queue_ms"};
    if (id < M_OPS) {
        snprintf(buf, n, "%s", base[id]);
        *unit = base_unit[id];
    } else if (id < M_LAT) {
        snprintf(buf, n, "nfs.%s.ops_rate", OPS_LOW[id - M_OPS]);
        *unit = "ops/s";
    } else if (id < M_RETR) {
        snprintf(buf, n, "nfs.%s.%s", OPS_LOW[(id - M_LAT) / 3], lat[(id - M_LAT) % 3]);
        *unit = "ms";
    } else {
        snprintf(buf, n, "%s", tail[id - M_RETR]);
        *unit = tail_unit[id - M_RETR];
    }
}

#define TWO53 ((i128)1 << 53)
#define MAX_DELTA ((i128)1 << 63)

/* a / b as Python's int true division rounds it, when both are exact doubles; 0 when they are not. */
static int exact_div(i128 a, i128 b, double *out) {
    if (a >= TWO53 || a <= -TWO53 || b >= TWO53 || b <= -TWO53) return 0;
    *out = (double)a / (double)b;
    return 1;
}

typedef struct {
    int id[NMETRIC + 8];
    double v[NMETRIC + 8];
    int n;
    Py_ssize_t reset, absurd;
} Out;

static void put(Out *o, int id, double v) {
    o->id[o->n] = id;
    o->v[o->n++] = v;
}

/* interval_metrics(e0, e1, dt); returns 1 (metrics in `o`), 0 (dropped, counted), -1 (leave to Python). */
static int interval(const Snap *a, const Snap *b, double dt, Out *o) {
    o->n = 0;
    o->reset = o->absurd = 0;
    if (b->age < a->age) return o->reset = 1, 0;
    i128 db[8];
    for (int i = 0; i < 8; i++) db[i] = b->bytes[i] - a->bytes[i];
    for (int i = 0; i < 8; i++)
        if (db[i] < 0) return o->reset = 1, 0;
    i128 big = db[4] > db[5] ? db[4] : db[5];
    for (int i = 0; i < 8; i++)
        if (db[i] > MAX_DELTA) return o->absurd = 1, 0;
    if ((double)big / dt > 1e12) return o->absurd = 1, 0;
    put(o, M_RB, (double)db[4]);
    put(o, M_WB, (double)db[5]);
    put(o, M_RR, (double)db[4] / dt);
    put(o, M_WR, (double)db[5] / dt);
    put(o, M_AR, (double)(db[0] + db[2]) / dt);
    put(o, M_AW, (double)(db[1] + db[3]) / dt);
    i128 mm = db[4] - db[0] - db[2];
    put(o, M_MR, (double)(mm > 0 ? mm : 0) / dt);
    i128 retrans = 0, timeouts = 0, errors = 0;
    int any_errors = 0;
    for (int t = 0; t < b->nops; t++) {
        int k = b->order[t];
        if (b->nf[k] > 8) any_errors = 1;
        if (a->nf[k] == 0) continue;
        int n = a->nf[k] < b->nf[k] ? a->nf[k] : b->nf[k];
        i128 d[MAXF];
        for (int i = 0; i < n; i++) d[i] = b->ops[k][i] - a->ops[k][i];
        if (d[0] < 0 || d[0] > MAX_DELTA) {
            o->reset++;
            continue;
        }
        put(o, M_OPS + k, (double)d[0] / dt);
        if (0 <= d[1] - d[0] && d[1] - d[0] < MAX_DELTA) retrans += d[1] - d[0];
        timeouts += d[2] > 0 ? d[2] : 0;
        if (n > 8 && 0 <= d[8] && d[8] < MAX_DELTA) errors += d[8];
        if (d[0] > 0 && k < 3) {
            static const int idx[3] = {6, 7, 5};
            for (int l = 0; l < 3; l++) {
                i128 x = d[idx[l]];
                double q;
                if (0 <= x && x < MAX_DELTA) {
                    if (!exact_div(x, d[0], &q)) return -1;
                    put(o, M_LAT + 3 * k + l, q);
                } else {
                    o->absurd++;
                }
            }
        }
    }
    put(o, M_RETR, (double)retrans);
    put(o, M_TMO, (double)timeouts);
    if (any_errors) put(o, M_ERR, (double)errors);
    put(o, M_XC, (double)b->nx);
    if (a->nx == b->nx && b->sends >= a->sends) {
        put(o, M_XS, (double)(b->sends - a->sends) / dt);
        if (b->sends > a->sends && b->bklog >= a->bklog) {
            double q;
            if (!exact_div(b->bklog - a->bklog, b->sends - a->sends, &q)) return -1;
            put(o, M_XB, q);
        }
    }
    if (a->nev == b->nev && b->nev > 15) {
        i128 d = b->ev[15] - a->ev[15];
        put(o, M_FS, (double)(d > 0 ? d : 0) / dt);
        if (b->nev > 26) {
            i128 r = b->ev[25] - a->ev[25], w = b->ev[26] - a->ev[26];
            put(o, M_PR, (double)(r > 0 ? r : 0) / dt);
            put(o, M_PW, (double)(w > 0 ? w : 0) / dt);
        }
    }
    return 1;
}

/* `<epoch> <monotonic>\n` as `_head` reads it when both are plain decimals: where the body starts, or NULL. */
static const char *snap_head(const char *p, const char *e, double *epoch, double *mono) {
    const char *nl = memchr(p, '\n', e - p), *q = p;
    if (nl == NULL) return NULL;
    if ((q = plain_decimal(q, nl, epoch)) == NULL || !lit(&q, nl, " ", 1) ||
        (q = plain_decimal(q, nl, mono)) == NULL)
        return NULL;
    return q == nl ? nl + 1 : NULL;
}

static PyObject *mountstats(PyObject *self, PyObject *args) {
    Py_buffer buf, prev;
    Py_ssize_t pos, end;
    double prev_mono;
    if (!PyArg_ParseTuple(args, "y*nndy*:mountstats", &buf, &pos, &end, &prev_mono, &prev)) return NULL;
    Snap *s0 = PyMem_Malloc(sizeof(Snap)), *s1 = PyMem_Malloc(sizeof(Snap));
    Vec ts[NMETRIC] = {{0}}, vals[NMETRIC] = {{0}};
    PyObject *out = NULL;
    if (s0 == NULL || s1 == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (pos < 0 || end < pos || end > buf.len) {
        PyErr_Format(PyExc_ValueError, "pos %zd / end %zd outside the buffer", pos, end);
        goto done;
    }
    const char *base = buf.buf, *p = base + pos, *stop = base + end;
    const char *search_end = base + (buf.len - end > 4 ? end + 4 : buf.len); /* "\n#ts " may straddle end */
    const char *last_body = NULL, *last_body_end = NULL;
    Py_ssize_t records = 0, bad_interval = 0, reset = 0, absurd = 0, lines = 0, guess = 0;
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    if (snap_parse(prev.buf, prev.len, s0)) {
        Out o;
        while (p < stop) {
            double epoch, mono;
            const char *body, *sep, *body_end;
            if (stop - p < 4 || !same_bytes(p, "#ts ", 4)) break;
            /* The next "\n#ts " is looked for near where the last snapshot's length puts it; a body that then
             * parses has no line starting with "#ts " (snap_parse refuses one), so that is the first one.
             * Otherwise the search starts over from here, as the plain rule says. */
            const char *from = guess > 256 ? p + guess - 256 : p;
            sep = NULL;
            if (guess > 0 && (body = snap_head(p + 4, stop, &epoch, &mono)) != NULL && from < search_end)
                sep = memmem(from > body ? from : body, search_end - (from > body ? from : body), "\n#ts ", 5);
            if (sep == NULL || !snap_parse(body, sep - body, s1)) {
                sep = memmem(p, search_end - p, "\n#ts ", 5);
                body_end = sep != NULL ? sep : stop;
                if ((body = snap_head(p + 4, body_end, &epoch, &mono)) == NULL) break;
                if (!snap_parse(body, body_end - body, s1)) break;
            }
            body_end = sep != NULL ? sep : stop;
            double dt = mono - prev_mono;
            if (dt <= 0) {
                bad_interval++;
            } else {
                int r = interval(s0, s1, dt, &o);
                if (r < 0) break;
                reset += o.reset;
                absurd += o.absurd;
                if (r > 0) {
                    put(&o, M_DT, dt);
                    for (int k = 0; k < o.n; k++)
                        if (!vec_push(&ts[o.id[k]], &epoch, sizeof(double)) ||
                            !vec_push(&vals[o.id[k]], &o.v[k], sizeof(double)))
                            nomem = 1;
                    records += o.n - 1;
                }
            }
            Snap *tmp = s0;
            s0 = s1;
            s1 = tmp;
            prev_mono = mono;
            last_body = body;
            last_body_end = body_end;
            lines += 1 + s0->lines + (sep != NULL); /* s0 is this one now: head, body, separator */
            const char *next = sep != NULL && sep < stop ? sep + 1 : stop;
            guess = next - p;
            p = next;
        }
    }
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *cols = PyList_New(0);
    if (cols == NULL) goto done;
    for (int id = 0; id < NMETRIC; id++) {
        if (ts[id].len == 0) continue;
        char name[64];
        const char *unit;
        metric_name(id, name, sizeof name, &unit);
        PyObject *item = Py_BuildValue("(ssNN)", name, unit, vec_bytes(&ts[id]), vec_bytes(&vals[id]));
        if (item == NULL || PyList_Append(cols, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(cols);
            goto done;
        }
        Py_DECREF(item);
    }
    Py_ssize_t lb = last_body ? last_body - base : -1, le = last_body ? last_body_end - base : -1;
    out = Py_BuildValue("(n(nnd)Nnn{snsnsn})", p - base, lb, le, prev_mono, cols, records, lines, "bad_interval",
                        bad_interval, "counter_reset", reset, "absurd_delta", absurd);
done:
    for (int id = 0; id < NMETRIC; id++) {
        free(ts[id].data);
        free(vals[id].data);
    }
    PyMem_Free(s0);
    PyMem_Free(s1);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&prev);
    return out;
}

/* ---- nfsiostat ------------------------------------------------------------------------------------
 * nfsiostat(data, pos, state, offset, mounts, headers, top, nconnect_gt1, nseries) reads the lines of a bundle
 * nfsiostat.log in `data` from `pos` as nfsiostat.py's `_Parse.line` would, for the lines it can take exactly:
 * `#ts <decimal>`, blank lines, mount lines Python has already seen (`mounts`: [(stripped line, last ts)]),
 * header lines Python has already mapped (`headers`: [(stripped line, ((series, scale, bytes series), ...))]),
 * the `rpc bklog` line and value lines. It stops at the first other line (free text, a new header or mount, a
 * PCP `Timestamp`, any byte outside printable ASCII and tab) and returns where; Python takes that line and
 * calls again. state = (ts or None, emit, block_prev or None, pending: -1 none, -2 top, k header k).
 */
#define NF_MAXCOLS 32
#define NF_MAXMOUNTS 64
#define NF_MAXHEADERS 64

typedef struct {
    const char *line;
    Py_ssize_t len;
    double last;
} NfMount;

typedef struct {
    const char *line;
    Py_ssize_t len;
    int ncols, sid[NF_MAXCOLS], bytes_sid[NF_MAXCOLS];
    double scale[NF_MAXCOLS];
} NfHeader;

typedef struct {
    int has_ts, emit, has_prev, pending, cur_mount, top_gt1, top_sid[2], nomem;
    double ts, prev, offset;
    NfMount mounts[NF_MAXMOUNTS];
    NfHeader headers[NF_MAXHEADERS];
    int nmounts, nheaders, nseries;
    Vec *ts_out, *val_out;
    Py_ssize_t records, column_count, top_nconnect, non_increasing, lines;
} NfState;

/* _VALUE_CELLS.findall over [p, e) (ASCII digits, blanks, `.-()%` only): the number of each cell in
 * cells[] as [start, end) pairs; the count, or -1 when there are more than `cap`. */
static int value_cells(const char *p, const char *e, const char **cells, int cap) {
    int n = 0;
    const char *i = p;
    while (i < e) {
        if (is_digit(*i)) { /* \d+\s+\(\d+(?:\.\d+)?%\) */
            const char *j = i, *k;
            while (j < e && is_digit(*j)) j++;
            k = j;
            while (k < e && (*k == ' ' || *k == '\t')) k++;
            if (k > j && k < e && *k == '(') {
                const char *d = ++k;
                while (k < e && is_digit(*k)) k++;
                if (k > d) {
                    if (k + 1 < e && *k == '.' && is_digit(k[1]))
                        for (k++; k < e && is_digit(*k);) k++;
                    if (k + 1 < e && k[0] == '%' && k[1] == ')') {
                        if (n == cap) return -1;
                        cells[2 * n] = i;
                        cells[2 * n + 1] = j;
                        n++;
                        i = k + 2;
                        continue;
                    }
                }
            }
        }
        const char *s = i + (*i == '-'); /* -?\d+(?:\.\d+)? */
        if (s < e && is_digit(*s)) {
            const char *j = s;
            while (j < e && is_digit(*j)) j++;
            if (j + 1 < e && *j == '.' && is_digit(j[1]))
                for (j++; j < e && is_digit(*j);) j++;
            if (n == cap) return -1;
            cells[2 * n] = i;
            cells[2 * n + 1] = j;
            n++;
            i = j;
            continue;
        }
        i++;
    }
    return n;
}

static int nf_add(NfState *st, int sid, double v) {
    if (!vec_push(&st->ts_out[sid], &st->ts, sizeof(double)) || !vec_push(&st->val_out[sid], &v, sizeof v))
        return st->nomem = 1, 0;
    st->records++;
    return 1;
}

/* The value line of the pending header (or top line): only cell characters (see nf_line). */
static int nf_values(NfState *st, const char *p, const char *e) {
    const char *cells[2 * (NF_MAXCOLS + 1)];
    double v[NF_MAXCOLS];
    int top = st->pending == -2, n = value_cells(p, e, cells, NF_MAXCOLS + 1);
    NfHeader *h = top ? NULL : &st->headers[st->pending];
    int want = top ? 2 : h->ncols;
    if (n == want)
        for (int c = 0; c < n; c++)
            if (!decimal(cells[2 * c], cells[2 * c + 1], &v[c])) return 0;
    st->pending = -1;
    if (n != want) {
        st->column_count++;
        return 1;
    }
    if (!st->emit) return 1;
    if (top) {
        if (st->top_gt1)
            st->top_nconnect++;
        else if (!nf_add(st, st->top_sid[0], v[0]))
            return 0;
        return nf_add(st, st->top_sid[1], v[1]);
    }
    for (int c = 0; c < n; c++) {
        double value = v[c] * h->scale[c];
        if (!nf_add(st, h->sid[c], value)) return 0;
        if (h->bytes_sid[c] >= 0 && st->has_prev && !nf_add(st, h->bytes_sid[c], value * (st->ts - st->prev)))
            return 0;
    }
    return 1;
}

/* Character classes of nfsiostat lines: NF_CELL (digits, blanks, `.-()%`), NF_TEXT (other printable ASCII),
 * NF_ODD (control characters but tab, non-ASCII bytes: such a line is left to Python). */
enum { NF_CELL = 0, NF_TEXT = 1, NF_ODD = 2 };
static unsigned char NF_CLASS[256];

static void nf_classes(void) {
    for (int c = 0; c < 256; c++)
        NF_CLASS[c] = c >= 0x80 || (c < 0x20 && c != '\t') ? NF_ODD
                      : is_digit((char)c) || strchr(" \t.-()%", c) != NULL ? NF_CELL
                                                                          : NF_TEXT;
}

/* One line [p, e) without its newline: 1 taken, 0 left to Python. */
static int nf_line(NfState *st, const char *p, const char *e) {
    unsigned seen = 0; /* one pass, no branch: the classes of all its characters */
    for (const char *r = p; r < e; r++) seen |= NF_CLASS[(unsigned char)*r];
    if (seen & NF_ODD) return 0;
    if (e - p >= 4 && same_bytes(p, "#ts ", 4)) { /* float(line.split()[1]) */
        const char *q = p + 4, *t;
        while (q < e && (*q == ' ' || *q == '\t')) q++;
        t = q;
        while (t < e && *t != ' ' && *t != '\t') t++;
        double raw;
        if (plain_decimal(q, t, &raw) != t) return 0;
        st->ts = raw - st->offset;
        st->has_ts = 1;
        st->emit = 0; /* a new sample: nothing is emitted until its mount line */
        return 1;
    }
    if (e - p >= 9 && same_bytes(p, "Timestamp", 9)) return 0;
    while (p < e && (*p == ' ' || *p == '\t')) p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t')) e--;
    if (p == e) return 1;
    Py_ssize_t len = e - p;
    int numeric = !(seen & NF_TEXT); /* then it cannot hold " mounted on " (stripping took blanks only) */
    if (!numeric && memmem(p, len, " mounted on ", 12) != NULL) {
        if (!st->has_ts) return 0;
        for (int j = 0; j < st->nmounts; j++) {
            NfMount *m = &st->mounts[j];
            if (m->len != len || !same_bytes(m->line, p, len)) continue;
            st->pending = -1;
            st->emit = 1;
            st->has_prev = 1;
            st->prev = m->last;
            if (st->has_prev && st->ts <= st->prev) {
                st->non_increasing++;
                st->emit = 0;
            }
            m->last = st->ts;
            st->cur_mount = j;
            return 1;
        }
        return 0;
    }
    if (st->pending != -1) return numeric && nf_values(st, p, e);
    if (!numeric && memmem(p, len, "rpc bklog", 9) != NULL) {
        st->pending = -2;
        return 1;
    }
    for (int k = 0; k < st->nheaders; k++)
        if (st->headers[k].len == len && same_bytes(st->headers[k].line, p, len)) {
            st->pending = k;
            return 1;
        }
    return 0;
}

static int nf_args(NfState *st, PyObject *mounts, PyObject *headers) {
    st->nmounts = (int)PyList_GET_SIZE(mounts);
    st->nheaders = (int)PyList_GET_SIZE(headers);
    if (st->nmounts > NF_MAXMOUNTS || st->nheaders > NF_MAXHEADERS) {
        PyErr_SetString(PyExc_ValueError, "at most 64 mounts and 64 headers");
        return 0;
    }
    for (int j = 0; j < st->nmounts; j++) {
        PyObject *line;
        NfMount *m = &st->mounts[j];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(mounts, j), "Sd", &line, &m->last)) return 0;
        m->line = PyBytes_AS_STRING(line);
        m->len = PyBytes_GET_SIZE(line);
    }
    for (int k = 0; k < st->nheaders; k++) {
        PyObject *line, *cols;
        NfHeader *h = &st->headers[k];
        if (!PyArg_ParseTuple(PyList_GET_ITEM(headers, k), "SO!", &line, &PyTuple_Type, &cols)) return 0;
        h->line = PyBytes_AS_STRING(line);
        h->len = PyBytes_GET_SIZE(line);
        h->ncols = (int)PyTuple_GET_SIZE(cols);
        if (h->ncols > NF_MAXCOLS) {
            PyErr_SetString(PyExc_ValueError, "at most 32 columns per header");
            return 0;
        }
        for (int c = 0; c < h->ncols; c++) {
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(cols, c), "idi", &h->sid[c], &h->scale[c], &h->bytes_sid[c]))
                return 0;
            if (h->sid[c] < 0 || h->sid[c] >= st->nseries || h->bytes_sid[c] >= st->nseries) {
                PyErr_SetString(PyExc_ValueError, "series id outside nseries");
                return 0;
            }
        }
    }
    if (st->pending >= st->nheaders || st->pending < -2 || st->top_sid[0] < 0 || st->top_sid[1] < 0 ||
        st->top_sid[0] >= st->nseries || st->top_sid[1] >= st->nseries) {
        PyErr_SetString(PyExc_ValueError, "pending header or top series outside the tables");
        return 0;
    }
    return 1;
}

static PyObject *opt_float(int has, double v) { return has ? PyFloat_FromDouble(v) : Py_NewRef(Py_None); }

static PyObject *nfsiostat(PyObject *self, PyObject *args) {
    Py_buffer buf;
    Py_ssize_t pos;
    PyObject *ts_obj, *prev_obj, *mounts, *headers, *out = NULL;
    NfState *st = PyMem_Calloc(1, sizeof(NfState));
    if (st == NULL) return PyErr_NoMemory();
    if (!PyArg_ParseTuple(args, "y*n(OpOi)dO!O!(ii)pi:nfsiostat", &buf, &pos, &ts_obj, &st->emit, &prev_obj,
                          &st->pending, &st->offset, &PyList_Type, &mounts, &PyList_Type, &headers,
                          &st->top_sid[0], &st->top_sid[1], &st->top_gt1, &st->nseries)) {
        PyMem_Free(st);
        return NULL;
    }
    st->has_ts = ts_obj != Py_None;
    st->has_prev = prev_obj != Py_None;
    st->ts = st->has_ts ? PyFloat_AsDouble(ts_obj) : 0.0;
    st->prev = st->has_prev ? PyFloat_AsDouble(prev_obj) : 0.0;
    st->cur_mount = -1;
    if (st->nseries < 0 || st->nseries > 4096) st->nseries = -1;
    st->ts_out = st->nseries > 0 ? PyMem_Calloc(st->nseries, sizeof(Vec)) : NULL;
    st->val_out = st->nseries > 0 ? PyMem_Calloc(st->nseries, sizeof(Vec)) : NULL;
    if (PyErr_Occurred()) goto done;
    if (st->nseries <= 0 || st->ts_out == NULL || st->val_out == NULL) {
        PyErr_SetString(PyExc_ValueError, "nseries must be 1..4096");
        goto done;
    }
    if (pos < 0 || pos > buf.len) {
        PyErr_Format(PyExc_ValueError, "pos %zd outside the buffer", pos);
        goto done;
    }
    if (!nf_args(st, mounts, headers)) goto done;
    const char *base = buf.buf, *p = base + pos, *end = base + buf.len;
    Py_BEGIN_ALLOW_THREADS
    while (p < end) {
        const char *nl = memchr(p, '\n', end - p);
        if (nl == NULL || !nf_line(st, p, nl)) break;
        p = nl + 1;
        st->lines++;
    }
    Py_END_ALLOW_THREADS
    if (st->nomem) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *cols = PyList_New(0), *lasts = PyList_New(st->nmounts);
    if (cols == NULL || lasts == NULL) {
        Py_XDECREF(cols);
        Py_XDECREF(lasts);
        goto done;
    }
    for (int j = 0; j < st->nmounts; j++) {
        PyObject *last = PyFloat_FromDouble(st->mounts[j].last);
        if (last == NULL) {
            Py_DECREF(cols);
            Py_DECREF(lasts);
            goto done;
        }
        PyList_SET_ITEM(lasts, j, last);
    }
    for (int sid = 0; sid < st->nseries; sid++) {
        if (st->ts_out[sid].len == 0) continue;
        PyObject *item = Py_BuildValue("(iNN)", sid, vec_bytes(&st->ts_out[sid]), vec_bytes(&st->val_out[sid]));
        if (item == NULL || PyList_Append(cols, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(cols);
            Py_DECREF(lasts);
            goto done;
        }
        Py_DECREF(item);
    }
    out = Py_BuildValue("(n(NNNi)iNNnn{snsnsn})", p - base, opt_float(st->has_ts, st->ts),
                        PyBool_FromLong(st->emit), opt_float(st->has_prev, st->prev), st->pending, st->cur_mount,
                        lasts, cols, st->records, st->lines, "column_count", st->column_count, "top_line_nconnect", st->top_nconnect,
                        "non_increasing_ts", st->non_increasing);
done:
    if (st->ts_out != NULL)
        for (int sid = 0; sid < st->nseries; sid++) {
            free(st->ts_out[sid].data);
            free(st->val_out[sid].data);
        }
    PyMem_Free(st->ts_out);
    PyMem_Free(st->val_out);
    PyMem_Free(st);
    PyBuffer_Release(&buf);
    return out;
}

static PyMethodDef methods[] = {
    {"bpftrace", bpftrace, METH_VARARGS,
     "bpftrace(data, pos, have_ticks, ended, cur) -> (pos, lines, ticks, sums, cur, last_tick, comms, hists)"},
    {"mountstats", mountstats, METH_VARARGS,
     "mountstats(data, pos, end, prev_mono, prev_body) -> (stop, (last_body_start, last_body_end, last_mono), "
     "[(metric, unit, epochs, values)], records, lines, skipped)"},
    {"nfsiostat", nfsiostat, METH_VARARGS,
     "nfsiostat(data, pos, state, offset, mounts, headers, top, nconnect_gt1, nseries) -> (pos, state, mount, "
     "mounts_last_ts, [(series, epochs, values)], records, lines, skipped)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "labctl's compiled scanners.", -1, methods};

PyMODINIT_FUNC PyInit__scan(void) {
    if (PyType_Ready(&BufType) < 0) return NULL;
    nf_classes();
    if (!names_init(&SUM_TABLE, SUM_NAMES, NSUM) || !names_init(&HIST_TABLE, HIST_NAMES, NHIST) ||
        !names_init(&OPS_TABLE, OPS, NOPS)) {
        PyErr_SetString(PyExc_RuntimeError, "_scan: a name table does not fit its hash (change name_hash)");
        return NULL;
    }
    return PyModule_Create(&module);
}
