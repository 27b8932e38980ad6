/* A response body read from its socket in the thread that parses it, with the GIL released
 * while it waits, into the bytes objects it returns.
 *
 * Why: the engine writes the save stream into a socket that holds about 220 KiB (a Unix
 * socket's limit is the sender's buffer), and it stops whenever that is full. http.client
 * reads a body in Python, HTTP/1.1's chunk framing too, which costs about as much as the
 * parse. A thread of its own that kept the socket empty (this module's first form) cost
 * more than it saved on a 2-core machine: the engine, that thread and the parse then want
 * three cores, and every chunk woke it. Read here, in pieces small enough that the parse of
 * one is done before the engine fills the socket (save_stream.PIECE_BYTES), as dive reads
 * it in Go. A body without chunks (save_stream asks for HTTP/1.0) is received straight into
 * the piece; chunks are received aside and their framing taken out on the way in.
 *
 * Errors (a framing it cannot read, the engine closing mid-body) are raised as OSError.
 * Like the SDK's own streams, it has no timeout; it wakes every tick to let Ctrl-C in.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#define SCRATCH (256 * 1024) /* one receive at most */
#define TICK_MS 100          /* how often a wait looks for a signal (Ctrl-C) */

/* Where the chunk decoder is: in a chunk's size line (or its extension), in its data,
 * at the CRLF after its data, in the trailer after the last chunk, or done. */
enum { SIZE, EXTENSION, DATA, DATA_END, TRAILER, DONE };

typedef struct {
    PyObject_HEAD
    int fd;
    int chunked;
    int open;
    char *buf; /* decoded body beyond what the reads took: `have` bytes from the start */
    size_t cap, have, size;
    char *out; /* the bytes object the read at hand fills: `filled` of `want` */
    size_t filled, want;
    char *scratch;
    int eof;      /* nothing more will come */
    int complete; /* the body's end was reached */
    char why[200]; /* set once: the body cannot be read further */
    int state;
    unsigned long long left; /* of the chunk's data */
    int digits;
    int line_chars; /* of the trailer line at hand */
} Drain;

static void fail(Drain *d, const char *why)
{
    if (!d->why[0])
        snprintf(d->why, sizeof d->why, "%s", why);
}

/* Decoded data goes straight into the read's bytes object, and what it has no room for
 * into `buf`: only the prefix, decoded before any read (a receive asks for no more than
 * the read has room for, and decoded data is never longer than what was received). */
static void put(Drain *d, const char *p, size_t n)
{
    size_t k = d->want - d->filled;
    if (k > n)
        k = n;
    if (k) {
        memcpy(d->out + d->filled, p, k);
        d->filled += k;
    }
    memcpy(d->buf + d->have, p + k, n - k);
    d->have += n - k;
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

/* Takes the chunk framing out of what was received. 1: go on, 0: a framing error. */
static int decode(Drain *d, const char *p, size_t n)
{
    if (!d->chunked) {
        put(d, p, n);
        return 1;
    }
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
            put(d, p + i, k);
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
                    d->complete = d->eof = 1;
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

/* One receive, decoded. 1: go on, 0: an error (in d->why), 2: nothing within a tick.
 * A body without chunks is received straight into the read's bytes object. */
static int pump(Drain *d)
{
    size_t room = d->want - d->filled;
    char *into = d->chunked ? d->scratch : d->out + d->filled;
    ssize_t got = recv(d->fd, into, d->chunked && room > SCRATCH ? SCRATCH : room, 0);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = {d->fd, POLLIN, 0}; /* a socket left non-blocking waits here */
            poll(&pfd, 1, TICK_MS);
            return 2;
        }
        if (errno == EINTR)
            return 2;
        fail(d, strerror(errno));
        return 0;
    }
    if (got == 0) {
        if (d->chunked) {
            fail(d, "the engine closed the connection before the end of the stream");
            return 0;
        }
        d->complete = d->eof = 1; /* a body without chunks ends where the connection does */
        return 1;
    }
    if (!d->chunked) {
        d->filled += (size_t)got;
        return 1;
    }
    return decode(d, d->scratch, (size_t)got);
}

static int Drain_init(Drain *d, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", "prefix", "chunked", "capacity", NULL};
    Py_buffer prefix;
    Py_ssize_t capacity;
    if (d->buf != NULL) {
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
    /* `buf` holds the prefix (what the HTTP client had buffered), or an interrupted
     * read's bytes (`capacity` at most). */
    d->cap = (size_t)capacity;
    d->size = d->cap > (size_t)prefix.len ? d->cap : (size_t)prefix.len;
    d->buf = PyMem_RawMalloc(d->size);
    d->scratch = PyMem_RawMalloc(SCRATCH);
    if (d->buf == NULL || d->scratch == NULL) {
        PyBuffer_Release(&prefix);
        PyErr_NoMemory();
        return -1;
    }
    d->state = SIZE;
    d->out = NULL;
    d->filled = d->want = 0; /* the prefix goes to `buf` */
    decode(d, prefix.buf, (size_t)prefix.len); /* an error is raised by the first read */
    PyBuffer_Release(&prefix);
    struct timeval tick = {0, TICK_MS * 1000};
    setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    d->open = 1;
    return 0;
}

/* read(n): up to n bytes of the body, once n are there or the body has ended; b"" after
 * its end. Receives without the GIL, a tick at a time so that Ctrl-C is seen, into the
 * bytes object it returns. */
static PyObject *Drain_read(Drain *d, PyObject *arg)
{
    Py_ssize_t want = PyLong_AsSsize_t(arg);
    if (want < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "read takes a size of 0 or more");
        return NULL;
    }
    if (!d->open) {
        PyErr_SetString(PyExc_ValueError, "the drain is closed");
        return NULL;
    }
    if ((size_t)want > d->cap)
        want = (Py_ssize_t)d->cap;
    PyObject *out = PyBytes_FromStringAndSize(NULL, want);
    if (out == NULL)
        return NULL;
    d->out = PyBytes_AS_STRING(out);
    d->want = (size_t)want;
    d->filled = d->have < d->want ? d->have : d->want;
    memcpy(d->out, d->buf, d->filled);
    d->have -= d->filled;
    memmove(d->buf, d->buf + d->filled, d->have); /* the rest of a prefix longer than the read */
    int interrupted = 0;
    while (!d->why[0] && d->filled < d->want && !d->eof) {
        int status;
        Py_BEGIN_ALLOW_THREADS
        do
            status = pump(d);
        while (status == 1 && d->filled < d->want && !d->eof);
        Py_END_ALLOW_THREADS
        if (status == 2 && PyErr_CheckSignals() < 0) {
            interrupted = 1;
            break;
        }
    }
    size_t filled = d->filled;
    d->out = NULL;
    d->filled = d->want = 0;
    if (interrupted) {
        /* Kept for the next read: `buf` is empty here (a receive comes only once the
         * read has taken all of it). */
        memcpy(d->buf, PyBytes_AS_STRING(out), filled);
        d->have = filled;
        Py_DECREF(out);
        return NULL;
    }
    if (d->why[0]) {
        Py_DECREF(out);
        PyErr_SetString(PyExc_OSError, d->why);
        return NULL;
    }
    if (filled < (size_t)want && _PyBytes_Resize(&out, (Py_ssize_t)filled) < 0)
        return NULL;
    return out;
}

/* No more reads; the socket is left to its owner. */
static PyObject *Drain_close(Drain *d, PyObject *unused)
{
    d->open = 0;
    Py_RETURN_NONE;
}

static PyObject *Drain_finished(Drain *d, void *closure)
{
    return PyBool_FromLong(d->complete && !d->why[0] && d->have == 0);
}

static void Drain_dealloc(Drain *d)
{
    PyMem_RawFree(d->buf);
    PyMem_RawFree(d->scratch);
    Py_TYPE(d)->tp_free((PyObject *)d);
}

static PyMethodDef Drain_methods[] = {
    {"read", (PyCFunction)Drain_read, METH_O, "Up to n bytes of the body; b'' after its end."},
    {"close", (PyCFunction)Drain_close, METH_NOARGS, "No more reads."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Drain_getset[] = {
    {"finished", (getter)Drain_finished, NULL, "The whole body was read, and all of it taken.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DrainType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "harness._drain.Drain",
    .tp_doc = "Drain(fd, prefix, chunked, capacity): a response body read from its socket.",
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
