/* A response body drained from its socket by a thread of its own, which never takes the GIL.
 *
 * Why: the engine writes the save stream in 32 KiB chunks into a socket that holds about
 * 220 KiB (a Unix socket's limit is the sender's buffer), and it stops whenever that is
 * full. Read from Python, the engine waits on every block the analysis parses and the
 * analysis on every chunk the engine writes. This thread keeps the socket empty, takes the
 * HTTP chunk framing out, and holds the body in a bounded ring that Python reads in large
 * pieces: the engine streams at its own pace while the parse runs on the other core.
 *
 * Errors the thread meets (a framing it cannot read, the engine closing mid-body) are
 * raised by the next read, as OSError. Like the SDK's own streams, it has no timeout.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#define SCRATCH (256 * 1024)
#define TICK_MS 100 /* how often a waiting thread looks whether it should stop */

/* Where the chunk decoder is: in a chunk's size line (or its extension), in its data,
 * at the CRLF after its data, in the trailer after the last chunk, or done. */
enum { SIZE, EXTENSION, DATA, DATA_END, TRAILER, DONE };

typedef struct {
    PyObject_HEAD
    int fd;
    int chunked;
    char *ring;
    size_t cap;
    unsigned long long written, taken; /* bytes put into and taken from the ring, ever */
    size_t want; /* what a waiting read waits for: woken only once that much is there */
    int eof, stop, started, ready;
    int complete; /* the body's end was reached */
    char why[200]; /* set once: the thread failed */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t more, room;
    /* the thread's own */
    char *prefix; /* body bytes the HTTP client had already buffered */
    Py_ssize_t prefix_len;
    int state;
    unsigned long long left; /* of the chunk's data */
    int digits;
    int line_chars; /* of the trailer line at hand */
} Drain;

static void fail(Drain *d, const char *why)
{
    pthread_mutex_lock(&d->mu);
    if (!d->why[0])
        snprintf(d->why, sizeof d->why, "%s", why);
    pthread_cond_broadcast(&d->more);
    pthread_mutex_unlock(&d->mu);
}

/* Copies body bytes into the ring, waiting for room. 0 when told to stop. */
static int put(Drain *d, const char *p, size_t n)
{
    while (n) {
        pthread_mutex_lock(&d->mu);
        while (d->written - d->taken == d->cap && !d->stop)
            pthread_cond_wait(&d->room, &d->mu);
        size_t room = d->cap - (size_t)(d->written - d->taken);
        int stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            return 0;
        /* Only this thread writes the free part of the ring: copy without the lock. */
        size_t at = (size_t)(d->written % d->cap);
        size_t k = n < room ? n : room;
        size_t first = k < d->cap - at ? k : d->cap - at;
        memcpy(d->ring + at, p, first);
        memcpy(d->ring, p + first, k - first);
        pthread_mutex_lock(&d->mu);
        d->written += k;
        if (d->written - d->taken >= d->want)
            pthread_cond_signal(&d->more);
        pthread_mutex_unlock(&d->mu);
        p += k;
        n -= k;
    }
    return 1;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Takes the chunk framing out of what was received; the data goes to the ring.
 * 1: go on, 0: stop (told to, or a framing error, already reported). */
static int decode(Drain *d, const char *p, size_t n)
{
    if (!d->chunked)
        return put(d, p, n);
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        switch (d->state) {
        case SIZE: {
            int v = hex_digit(c);
            if (v >= 0 && d->digits < 15) {
                d->left = d->left * 16 + (unsigned)v;
                d->digits++;
            } else if (d->digits && (c == ';' || c == ' ' || c == '\t' || c == '\r')) {
                d->state = EXTENSION;
            } else if (d->digits && c == '\n') {
                d->state = d->left ? DATA : TRAILER;
                d->line_chars = 0;
            } else {
                fail(d, "the engine's response has a malformed chunk size");
                return 0;
            }
            i++;
            break;
        }
        case EXTENSION:
            if (c == '\n') {
                d->state = d->left ? DATA : TRAILER;
                d->line_chars = 0;
            }
            i++;
            break;
        case DATA: {
            size_t k = n - i < d->left ? n - i : (size_t)d->left;
            if (!put(d, p + i, k))
                return 0;
            d->left -= k;
            i += k;
            if (!d->left)
                d->state = DATA_END;
            break;
        }
        case DATA_END: /* CR LF after the data; a bare LF is accepted */
            if (c == '\n') {
                d->state = SIZE;
                d->digits = 0;
            } else if (c != '\r') {
                fail(d, "the engine's response has no line end after a chunk");
                return 0;
            }
            i++;
            break;
        case TRAILER: /* header lines, then an empty one */
            if (c == '\n') {
                if (d->line_chars == 0) {
                    d->state = DONE;
                    return 1;
                }
                d->line_chars = 0;
            } else if (c != '\r') {
                d->line_chars++;
            }
            i++;
            break;
        default:
            return 1; /* DONE: anything after the body is not ours */
        }
    }
    return 1;
}

static void *run(void *arg)
{
    Drain *d = arg;
    char *buf = NULL;
    if (d->prefix_len && !decode(d, d->prefix, (size_t)d->prefix_len))
        goto out;
    buf = malloc(SCRATCH);
    if (buf == NULL) {
        fail(d, "out of memory");
        goto out;
    }
    /* A blocking receive that gives up at every tick to look whether it should stop: one
     * call per wake-up. A socket left non-blocking waits in poll instead. */
    struct timeval tick = {0, TICK_MS * 1000};
    setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    while (d->state != DONE) {
        pthread_mutex_lock(&d->mu);
        int stop = d->stop;
        pthread_mutex_unlock(&d->mu);
        if (stop)
            goto out;
        ssize_t got = recv(d->fd, buf, SCRATCH, 0);
        if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                struct pollfd pfd = {d->fd, POLLIN, 0};
                poll(&pfd, 1, TICK_MS);
                continue;
            }
            if (errno == EINTR)
                continue;
            fail(d, strerror(errno));
            goto out;
        }
        if (got == 0) {
            if (d->chunked) {
                fail(d, "the engine closed the connection before the end of the stream");
                goto out;
            }
            break; /* a body without chunks ends where the connection does */
        }
        if (!decode(d, buf, (size_t)got))
            goto out;
    }
    d->complete = 1;
out:
    free(buf);
    pthread_mutex_lock(&d->mu);
    d->eof = 1;
    pthread_cond_broadcast(&d->more);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static int Drain_init(Drain *d, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", "prefix", "chunked", "capacity", NULL};
    Py_buffer prefix;
    Py_ssize_t capacity;
    if (d->ring != NULL || d->prefix != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Drain is initialised once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iy*pn", kwlist, &d->fd, &prefix, &d->chunked,
                                     &capacity))
        return -1;
    if (capacity <= 0) {
        PyBuffer_Release(&prefix);
        PyErr_SetString(PyExc_ValueError, "capacity must be positive");
        return -1;
    }
    d->cap = (size_t)capacity;
    d->ring = PyMem_RawMalloc(d->cap);
    d->prefix = PyMem_RawMalloc(prefix.len ? (size_t)prefix.len : 1);
    if (d->ring == NULL || d->prefix == NULL) {
        PyBuffer_Release(&prefix);
        PyErr_NoMemory();
        return -1;
    }
    memcpy(d->prefix, prefix.buf, (size_t)prefix.len);
    d->prefix_len = prefix.len;
    PyBuffer_Release(&prefix);
    d->state = SIZE;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->more, NULL);
    pthread_cond_init(&d->room, NULL);
    d->ready = 1;
    int err = pthread_create(&d->thread, NULL, run, d);
    if (err) {
        errno = err;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    d->started = 1;
    return 0;
}

/* read(n): up to n bytes of the body, once n are there or the body has ended; b"" after
 * its end. Waits without the GIL, a tick at a time so that Ctrl-C is seen. */
static PyObject *Drain_read(Drain *d, PyObject *arg)
{
    Py_ssize_t want = PyLong_AsSsize_t(arg);
    if (want < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "read takes a size of 0 or more");
        return NULL;
    }
    if (!d->started) {
        PyErr_SetString(PyExc_ValueError, "the drain is closed");
        return NULL;
    }
    if ((size_t)want > d->cap)
        want = (Py_ssize_t)d->cap; /* no more than the ring holds can be waited for */
    size_t avail;
    char why[sizeof d->why];
    for (;;) {
        int eof;
        Py_BEGIN_ALLOW_THREADS
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += TICK_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        pthread_mutex_lock(&d->mu);
        d->want = (size_t)want;
        while (d->written - d->taken < (size_t)want && !d->eof && !d->why[0])
            if (pthread_cond_timedwait(&d->more, &d->mu, &until) == ETIMEDOUT)
                break;
        avail = (size_t)(d->written - d->taken);
        eof = d->eof;
        memcpy(why, d->why, sizeof why);
        pthread_mutex_unlock(&d->mu);
        Py_END_ALLOW_THREADS
        if (why[0]) {
            PyErr_SetString(PyExc_OSError, why);
            return NULL;
        }
        if (avail >= (size_t)want || eof)
            break;
        if (PyErr_CheckSignals() < 0)
            return NULL;
    }
    size_t k = avail < (size_t)want ? avail : (size_t)want;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)k);
    if (out == NULL)
        return NULL;
    char *dst = PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    /* Only this side reads the filled part of the ring: copy without the lock. */
    size_t at = (size_t)(d->taken % d->cap);
    size_t first = k < d->cap - at ? k : d->cap - at;
    memcpy(dst, d->ring + at, first);
    memcpy(dst + first, d->ring, k - first);
    pthread_mutex_lock(&d->mu);
    d->taken += k;
    pthread_cond_signal(&d->room);
    pthread_mutex_unlock(&d->mu);
    Py_END_ALLOW_THREADS
    return out;
}

/* Stops the thread (within a tick) and waits for it; the socket is left to its owner. */
static PyObject *Drain_close(Drain *d, PyObject *unused)
{
    if (d->started) {
        Py_BEGIN_ALLOW_THREADS
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->room);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        Py_END_ALLOW_THREADS
        d->started = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *Drain_finished(Drain *d, void *closure)
{
    int done;
    pthread_mutex_lock(&d->mu);
    done = d->complete && !d->why[0] && d->written == d->taken;
    pthread_mutex_unlock(&d->mu);
    return PyBool_FromLong(done);
}

static void Drain_dealloc(Drain *d)
{
    Drain_close(d, NULL);
    if (d->ready) {
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->more);
        pthread_cond_destroy(&d->room);
    }
    PyMem_RawFree(d->ring);
    PyMem_RawFree(d->prefix);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef Drain_methods[] = {
    {"read", (PyCFunction)Drain_read, METH_O, "Up to n bytes of the body; b'' after its end."},
    {"close", (PyCFunction)Drain_close, METH_NOARGS, "Stop the thread and wait for it."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Drain_getset[] = {
    {"finished", (getter)Drain_finished, NULL, "The whole body was read, and all of it taken.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DrainType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "harness._drain.Drain",
    .tp_doc = "Drain(fd, prefix, chunked, capacity): a response body read by a thread.",
    .tp_basicsize = sizeof(Drain),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Drain_init,
    .tp_dealloc = (destructor)Drain_dealloc,
    .tp_methods = Drain_methods,
    .tp_getset = Drain_getset,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_drain", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__drain(void)
{
    if (PyType_Ready(&DrainType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Drain", (PyObject *)&DrainType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
