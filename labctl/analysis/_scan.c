/* labctl.analysis._scan: compiled fast paths for the report's largest inputs.
 *
 * bpftrace(data, pos, have_ticks, ended, cur) scans the `bpftrace -f json` lines of io_by_second.bt in
 * `data` from `pos`, handling exactly the records the Python fast path in bpftrace.py handles (tick printf,
 * sum maps of plain `"comm": int` pairs, hist maps of min/max/count buckets) with the same arithmetic. It
 * stops at the first line it does not take (any other record, odd spacing, a number of 19+ digits, a full
 * table, a line without its newline) and returns where it stopped; Python parses that line and calls again.
 * The scan itself runs without the GIL, so ranges of one file can be scanned by several threads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
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
    Py_ssize_t lines;
    int nomem;
} State;

static int vec_push(Vec *v, const void *item, size_t n) {
    if (v->len + n > v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4096;
        while (cap < v->len + n) cap *= 2;
        char *p = realloc(v->data, cap);
        if (p == NULL) return 0;
        v->data = p;
        v->cap = cap;
    }
    memcpy(v->data + v->len, item, n);
    v->len += n;
    return 1;
}

/* Match the literal `s` (length n) at *p, advancing past it. */
static int lit(const char **p, const char *end, const char *s, size_t n) {
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0) return 0;
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

/* The index of the name [p, q) among `names`, or -1. */
static int name_index(const char *p, const char *q, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if ((size_t)(q - p) == strlen(names[i]) && memcmp(p, names[i], q - p) == 0) return i;
    return -1;
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

/* `{"type": "map", "data": {"@<sum map>": {"<comm>": <n>, ...}}}` with at least one pair. */
static int map_line(State *st, const char *p, const char *end) {
    const char *name = p;
    while (p < end && *p != '"') p++;
    int m = name_index(name, p, SUM_NAMES, NSUM);
    if (m < 0 || !lit(&p, end, "\": {", 4)) return 0;
    const char *keys[MAXPAIRS];
    Py_ssize_t lens[MAXPAIRS];
    int64_t vals[MAXPAIRS], total = 0;
    int n = 0;
    for (;;) {
        if (n == MAXPAIRS || !lit(&p, end, "\"", 1)) return 0;
        const char *k = p;
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
    int slot[MAXPAIRS], added = 0;
    for (int i = 0; i < n; i++) { /* check everything first: a line is taken whole or not at all */
        for (int k = 0; k < i; k++)
            if (lens[k] == lens[i] && memcmp(keys[k], keys[i], lens[i]) == 0) return 0; /* repeated comm */
        slot[i] = -1;
        for (int j = 0; j < st->ncomms[m]; j++)
            if (table[j].len == lens[i] && memcmp(table[j].key, keys[i], lens[i]) == 0) {
                int64_t sum;
                if (__builtin_add_overflow(table[j].count, vals[i], &sum)) return 0;
                slot[i] = j;
                break;
            }
        if (slot[i] < 0) added++;
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
    const char *name = p;
    while (p < end && *p != '"') p++;
    int h = name_index(name, p, HIST_NAMES, NHIST);
    if (h < 0 || !lit(&p, end, "\": [", 4)) return 0;
    Bucket got[MAXPAIRS];
    int n = 0;
    for (;;) {
        Bucket *b = &got[n];
        if (n == MAXPAIRS || !lit(&p, end, "{\"min\": ", 8) || !int_(&p, end, &b->lo) ||
            !lit(&p, end, ", \"max\": ", 9) || !int_(&p, end, &b->hi) ||
            !lit(&p, end, ", \"count\": ", 11) || !uint_(&p, end, &b->count) || !lit(&p, end, "}", 1))
            return 0;
        n++;
        if (lit(&p, end, "]}}", 3)) break;
        if (!lit(&p, end, ", ", 2)) return 0;
    }
    if (p != end || st->nhist[h] + n > MAXKEYS) return 0; /* n new buckets at most */
    Bucket *table = st->hist[h];
    int slot[MAXPAIRS];
    for (int i = 0; i < n; i++) { /* check everything first: a line is taken whole or not at all */
        for (int k = 0; k < i; k++)
            if (got[k].lo == got[i].lo && got[k].hi == got[i].hi) return 0; /* repeated bucket */
        slot[i] = -1;
        for (int j = 0; j < st->nhist[h]; j++)
            if (table[j].lo == got[i].lo && table[j].hi == got[i].hi) {
                int64_t sum;
                if (__builtin_add_overflow(table[j].count, got[i].count, &sum)) return 0;
                slot[i] = j;
                break;
            }
    }
    for (int i = 0; i < n; i++) {
        if (slot[i] < 0) {
            slot[i] = st->nhist[h]++;
            table[slot[i]] = (Bucket){got[i].lo, got[i].hi, 0};
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

static PyObject *vec_bytes(Vec *v) {
    return PyBytes_FromStringAndSize(v->data ? v->data : "", (Py_ssize_t)v->len);
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

static PyMethodDef methods[] = {
    {"bpftrace", bpftrace, METH_VARARGS,
     "bpftrace(data, pos, have_ticks, ended, cur) -> (pos, lines, ticks, sums, cur, last_tick, comms, hists)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "labctl's compiled scanners.", -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
