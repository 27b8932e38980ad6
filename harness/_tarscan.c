/* The common case of harness.layers' tar parse, in C: plain ustar/GNU headers of members
 * whose data lies whole in the block at hand, turned straight into Entry tuples.
 *
 * Anything else stops the scan at that header and the Python parser (TarParser and
 * _LayerParser._member, the reference) takes it: pax and GNU long-name records,
 * base-256 numbers, checksums that need the signed reading, names that need
 * normalising ("." and ".." components, "//"), whiteouts, the package databases the
 * analysis keeps whole, members cut by the end of the block, the end-of-archive block.
 * So this file only has to be right about what it accepts; tests run the tarfile oracle
 * through both parsers, and compare them entry for entry on the stand-ins' real layers.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define BLOCK 512

/* An octal header field: optional leading spaces, digits, then NULs or spaces only.
 * -1 for anything else (base-256, junk, overflow): the Python parser decides. */
static long long octal(const unsigned char *p, int n)
{
    int i = 0;
    long long v = 0;
    if (p[0] & 0x80)
        return -1;
    while (i < n && p[i] == ' ')
        i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v > (1LL << 56))
            return -1;
        v = v * 8 + (p[i] - '0');
    }
    for (; i < n; i++)
        if (p[i] != 0 && p[i] != ' ')
            return -1;
    return v;
}

/* The name without its leading and trailing slashes, as (start, length). */
static void stripped(const char *s, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *len)
{
    Py_ssize_t a = 0;
    while (a < n && s[a] == '/')
        a++;
    while (n > a && s[n - 1] == '/')
        n--;
    *start = a;
    *len = n - a;
}

/* Whether a name, its leading and trailing slashes stripped, needs more: it is empty
 * (the root, which the Python side skips), has an empty, "." or ".." component, or is a
 * whiteout (a ".wh." base name). */
static int irregular(const char *s, Py_ssize_t n)
{
    Py_ssize_t comp = 0, i;
    if (n == 0)
        return 1;
    for (i = 0; i <= n; i++) {
        if (i == n || s[i] == '/') {
            Py_ssize_t len = i - comp;
            if (len == 0 || (len == 1 && s[comp] == '.') ||
                (len == 2 && s[comp] == '.' && s[comp + 1] == '.'))
                return 1;
            if (i == n && len >= 4 && memcmp(s + comp, ".wh.", 4) == 0)
                return 1;
            comp = i + 1;
        }
    }
    return 0;
}

static PyObject *text(const char *s, Py_ssize_t n)
{
    return PyUnicode_DecodeUTF8(s, n, "surrogateescape");
}

static PyObject *make_entry(PyTypeObject *type, PyObject *path, PyObject *kind, long long size,
                            long long mode, PyObject *target, PyObject *digest)
{
    PyObject *entry = type->tp_alloc(type, 6); /* a tuple subclass: items filled below */
    if (entry == NULL)
        return NULL;
    PyObject *sz = PyLong_FromLongLong(size), *md = PyLong_FromLongLong(mode);
    if (sz == NULL || md == NULL) {
        Py_XDECREF(sz);
        Py_XDECREF(md);
        Py_DECREF(entry);
        return NULL;
    }
    Py_INCREF(path);
    Py_INCREF(kind);
    Py_INCREF(target);
    Py_INCREF(digest);
    PyTuple_SET_ITEM(entry, 0, path);
    PyTuple_SET_ITEM(entry, 1, kind);
    PyTuple_SET_ITEM(entry, 2, sz);
    PyTuple_SET_ITEM(entry, 3, md);
    PyTuple_SET_ITEM(entry, 4, target);
    PyTuple_SET_ITEM(entry, 5, digest);
    return entry;
}

static int kept(const char *path, Py_ssize_t n, PyObject *prefixes)
{
    Py_ssize_t i, count = PyTuple_GET_SIZE(prefixes);
    for (i = 0; i < count; i++) {
        PyObject *p = PyTuple_GET_ITEM(prefixes, i);
        Py_ssize_t len = PyBytes_GET_SIZE(p);
        if (n >= len && memcmp(path, PyBytes_AS_STRING(p), len) == 0)
            return 1;
    }
    return 0;
}

/* scan(block, pos, entries, hash, Entry, kinds, kept_prefixes) -> pos
 *
 * Reads members from `pos` while it can, appending an Entry for each to `entries`
 * (files hashed by calling `hash` on a memoryview of their data); returns the offset of
 * the first header it leaves to the Python parser (or of the end of the block).
 * `kinds` is (FILE, LINK, SYMLINK, DIR, OTHER); paths starting with one of
 * `kept_prefixes` (bytes) are left to the Python parser, which keeps their content. */
static PyObject *scan(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    PyObject *entries, *hash, *kinds, *prefixes;
    PyTypeObject *entry_type;
    if (!PyArg_ParseTuple(args, "y*nO!OO!O!O!", &view, &pos, &PyList_Type, &entries, &hash,
                          &PyType_Type, &entry_type, &PyTuple_Type, &kinds, &PyTuple_Type,
                          &prefixes))
        return NULL;
    if (PyTuple_GET_SIZE(kinds) != 5 || !PyType_IsSubtype(entry_type, &PyTuple_Type)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_TypeError, "kinds must hold 5 names and Entry be a tuple type");
        return NULL;
    }
    PyObject *FILE_ = PyTuple_GET_ITEM(kinds, 0), *LINK = PyTuple_GET_ITEM(kinds, 1),
             *SYMLINK = PyTuple_GET_ITEM(kinds, 2), *DIR = PyTuple_GET_ITEM(kinds, 3),
             *OTHER = PyTuple_GET_ITEM(kinds, 4);
    PyObject *empty_text = PyUnicode_New(0, 0), *empty_bytes = PyBytes_FromStringAndSize(NULL, 0);
    if (empty_text == NULL || empty_bytes == NULL)
        goto error;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    char name[256 + 1 + 100];
    while (pos >= 0 && pos + BLOCK <= end) {
        const unsigned char *h = buf + pos;
        long long stored = octal(h + 148, 8);
        if (stored < 0)
            break;
        long long sum = 8 * ' ';
        int i;
        for (i = 0; i < BLOCK; i++)
            sum += (i >= 148 && i < 156) ? 0 : h[i];
        if (sum != stored)
            break; /* a signed-sum writer, damage, or the zero block that ends the archive */
        unsigned char type = h[156];
        if (!(type == '\0' || (type >= '0' && type <= '7')))
            break; /* pax, GNU long names, sparse and the rest: the Python parser */
        Py_ssize_t n = strnlen((const char *)h, 100), plen = 0;
        if (memcmp(h + 257, "ustar\0", 6) == 0 && h[345])
            plen = strnlen((const char *)h + 345, 155);
        if (plen) {
            memcpy(name, h + 345, plen);
            name[plen] = '/';
            memcpy(name + plen + 1, h, n);
            n += plen + 1;
        } else {
            memcpy(name, h, n);
        }
        Py_ssize_t start, len;
        stripped(name, n, &start, &len);
        if (irregular(name + start, len))
            break;
        if (type == '\0' && name[n - 1] == '/')
            type = '5';
        int regular = type == '0' || type == '\0' || type == '7';
        long long mode = octal(h + 100, 8);
        long long size = regular ? octal(h + 124, 12) : 0; /* the others' size field is ignored */
        if (mode < 0 || size < 0)
            break;
        Py_ssize_t next = pos + BLOCK + (Py_ssize_t)((size + BLOCK - 1) / BLOCK * BLOCK);
        if (next > end)
            break; /* data cut by the end of the block: streamed by the Python parser */
        if (type != '5' && kept(name + start, len, prefixes))
            break;
        const char *link = (const char *)h + 157;
        Py_ssize_t link_len = strnlen(link, 100), lstart = 0, llen = link_len;
        if (type == '1') {
            stripped(link, link_len, &lstart, &llen);
            if (irregular(link + lstart, llen))
                break;
        }
        PyObject *path = text(name + start, len);
        if (path == NULL)
            goto error;
        PyObject *entry = NULL, *digest = NULL, *target = NULL;
        if (regular) {
            if (size) {
                PyObject *data = PyMemoryView_FromMemory((char *)h + BLOCK, size, PyBUF_READ);
                if (data != NULL) {
                    digest = PyObject_CallOneArg(hash, data);
                    Py_DECREF(data);
                }
            } else {
                digest = Py_NewRef(empty_bytes);
            }
            if (digest != NULL)
                entry = make_entry(entry_type, path, FILE_, size, mode, empty_text, digest);
        } else if (type == '5') {
            entry = make_entry(entry_type, path, DIR, 0, mode, empty_text, empty_bytes);
        } else if (type == '1' || type == '2') {
            target = text(link + lstart, llen);
            if (target != NULL)
                entry = make_entry(entry_type, path, type == '1' ? LINK : SYMLINK, 0, mode,
                                   target, empty_bytes);
        } else {
            entry = make_entry(entry_type, path, OTHER, 0, mode, empty_text, empty_bytes);
        }
        Py_DECREF(path);
        Py_XDECREF(digest);
        Py_XDECREF(target);
        if (entry == NULL)
            goto error;
        int failed = PyList_Append(entries, entry);
        Py_DECREF(entry);
        if (failed)
            goto error;
        pos = next;
    }
    Py_DECREF(empty_text);
    Py_DECREF(empty_bytes);
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(pos);
error:
    Py_XDECREF(empty_text);
    Py_XDECREF(empty_bytes);
    PyBuffer_Release(&view);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "Plain tar members of a block as Entry tuples; see the file's comment."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_tarscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__tarscan(void)
{
    return PyModule_Create(&module);
}
