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

/* ---- mountstats ------------------------------------------------------------------------------------
 * mountstats(snaps, start, prev_mono, prev_body) takes the bundle's `#ts` snapshots (a list of
 * (epoch, monotonic, body)) from `start`, each against the one before (the first against `prev_body`), and
 * computes exactly what mountstats.py's `interval_metrics` does for entries its `_fast_entry` reads. It
 * stops at the first snapshot it cannot take whole (any other layout, a number of 31+ digits, a division
 * Python would round differently) and returns its index; Python handles that one and calls again.
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
} Snap;

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_word(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int num128(const char **p, const char *end, i128 *out) {
    const char *q = *p;
    i128 v = 0;
    int n = 0;
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
static int ints(const char *p, const char *end, i128 *out, int cap) {
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

static int snap_parse(const char *b, Py_ssize_t len, Snap *s) {
    const char *e = b + len, *p = b, *le, *f;
    memset(s->nf, 0, sizeof s->nf);
    s->nops = 0;
    if (len < 7 || memcmp(b, "device ", 7) != 0 || memmem(b, len, "\ndevice ", 8) != NULL) return 0;
    const char *nl = memchr(b, '\n', len);
    if (nl == NULL) return 0;
    p += 7;
    if (!token(&p, nl) || !lit(&p, nl, " mounted on ", 12) || !token(&p, nl) ||
        !lit(&p, nl, " with fstype ", 13) || nl - p < 3 || memcmp(p, "nfs", 3) != 0 || !token(&p, nl))
        return 0;
    const char *ops_at = memmem(b, len, "per-op statistics", 17);
    if (ops_at == NULL || field(b, e, "\n\topts:\t", &le) == NULL) return 0;
    if (memmem(b, len, "\n\tnfsv4:\t", 9) != NULL && field(b, e, "\n\tnfsv4:\t", &le) == NULL) return 0;
    if ((f = field(b, e, "\n\tage:\t", &le)) == NULL || !num128(&f, le, &s->age) || f != le) return 0;
    if ((f = field(b, e, "\n\tevents:\t", &le)) == NULL || (s->nev = ints(f, le, s->ev, MAXEV)) < 0) return 0;
    if ((f = field(b, e, "\n\tbytes:\t", &le)) == NULL || (s->nbytes = ints(f, le, s->bytes, 8)) != 8) return 0;
    s->nx = 0;
    s->sends = s->bklog = 0;
    for (const char *x = b; (x = memmem(x, ops_at - x, "\n\txprt:\t", 8)) != NULL;) {
        const char *w = x + 8, *q = w;
        while (q < ops_at && is_word(*q)) q++;
        if (q == w || q >= ops_at || *q != ' ') return 0;
        const char *nums = ++q;
        while (q < ops_at && ((*q >= '0' && *q <= '9') || *q == ' ')) q++;
        if (q == nums || q >= ops_at || *q != '\n') return 0;
        i128 v[MAXF + 8];
        int n = ints(nums, q, v, MAXF + 8);
        if (n < 0) return 0;
        int udp = nums - 1 - w == 3 && memcmp(w, "udp", 3) == 0;
        int i = udp ? 2 : 5, j = udp ? 5 : 8;
        if (n > j) {
            s->sends += v[i];
            s->bklog += v[j];
        }
        s->nx++;
        x = q;
    }
    /* per-op lines: `[ \t]*NAME: digits-and-spaces` or empty, up to the end */
    p = memchr(ops_at, '\n', e - ops_at);
    if (p == NULL) return 0;
    p++;
    while (p < e) {
        const char *l = p, *lend = memchr(p, '\n', e - p);
        if (lend == NULL) return 0;
        p = lend + 1;
        if (l == lend) continue;
        const char *q = l;
        while (q < lend && (*q == ' ' || *q == '\t')) q++;
        const char *name = q;
        while (q < lend && ((*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') || *q == '_')) q++;
        const char *name_end = q;
        if (name == name_end || !lit(&q, lend, ": ", 2)) return 0;
        for (const char *r = q; r < lend; r++)
            if (!((*r >= '0' && *r <= '9') || *r == ' ')) return 0;
        int k = name_index(name, name_end, OPS, NOPS);
        if (k < 0) continue;
        if (name == l) return 0; /* no blank before the name: Python's pattern would not see it */
        int n = ints(q, lend, s->ops[k], MAXF);
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

typedef struct {
    double epoch, mono;
    const char *body;
    Py_ssize_t len;
} SnapRef;

static PyObject *mountstats(PyObject *self, PyObject *args) {
    PyObject *snaps;
    Py_ssize_t start;
    double prev_mono;
    Py_buffer prev;
    if (!PyArg_ParseTuple(args, "O!ndy*:mountstats", &PyList_Type, &snaps, &start, &prev_mono, &prev))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(snaps);
    SnapRef *refs = PyMem_Calloc(n ? n : 1, sizeof(SnapRef));
    Snap *s0 = PyMem_Malloc(sizeof(Snap)), *s1 = PyMem_Malloc(sizeof(Snap));
    Vec ts[NMETRIC] = {{0}}, vals[NMETRIC] = {{0}};
    PyObject *out = NULL;
    if (refs == NULL || s0 == NULL || s1 == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (start < 0 || start > n) {
        PyErr_Format(PyExc_ValueError, "start %zd outside the list", start);
        goto done;
    }
    for (Py_ssize_t i = start; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(snaps, i), *body;
        if (!PyArg_ParseTuple(t, "ddS", &refs[i].epoch, &refs[i].mono, &body)) goto done;
        refs[i].body = PyBytes_AS_STRING(body);
        refs[i].len = PyBytes_GET_SIZE(body);
    }
    Py_ssize_t i = start, records = 0, bad_interval = 0, reset = 0, absurd = 0;
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    if (snap_parse(prev.buf, prev.len, s0)) {
        Out o;
        for (; i < n; i++) {
            if (!snap_parse(refs[i].body, refs[i].len, s1)) break;
            double dt = refs[i].mono - prev_mono;
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
                        if (!vec_push(&ts[o.id[k]], &refs[i].epoch, sizeof(double)) ||
                            !vec_push(&vals[o.id[k]], &o.v[k], sizeof(double)))
                            nomem = 1;
                    records += o.n - 1;
                }
            }
            Snap *tmp = s0;
            s0 = s1;
            s1 = tmp;
            prev_mono = refs[i].mono;
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
    out = Py_BuildValue("(nNn{snsnsn})", i, cols, records, "bad_interval", bad_interval, "counter_reset", reset,
                        "absurd_delta", absurd);
done:
    for (int id = 0; id < NMETRIC; id++) {
        free(ts[id].data);
        free(vals[id].data);
    }
    PyMem_Free(refs);
    PyMem_Free(s0);
    PyMem_Free(s1);
    PyBuffer_Release(&prev);
    return out;
}

static PyMethodDef methods[] = {
    {"bpftrace", bpftrace, METH_VARARGS,
     "bpftrace(data, pos, have_ticks, ended, cur) -> (pos, lines, ticks, sums, cur, last_tick, comms, hists)"},
    {"mountstats", mountstats, METH_VARARGS,
     "mountstats(snaps, start, prev_mono, prev_body) -> (stop, [(metric, unit, epochs, values)], records, "
     "skipped)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", "labctl's compiled scanners.", -1, methods};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
