"""streamstore — a ctypes binding of libstreamstore (standard library only).

    import streamstore

    with streamstore.Store(":memory:") as store, store.session() as s:
        s.create_namespace("app")
        s.append("app", "account-1", "Deposited", {"amount": 10})
        for m in s.read_stream("app", "account-1"):
            print(m["position"], m["type"], m["data"])

The library is found through $LSS_LIBRARY (a path to libstreamstore.so),
else ctypes.util.find_library("streamstore"), else the build directories of
a source tree this file sits in (build*/lib/libstreamstore.so).

Threads: a Store may be shared by threads; a Session is used by one thread
at a time (open one per thread).  Calls into the library release the GIL.

Names (namespaces, streams, types) are str (UTF-8; surrogateescape keeps
arbitrary bytes round-tripping) or bytes.  Payloads are dicts, or JSON text
as str/bytes which is stored byte for byte; they are read back with
json.loads, so integers of any size stay exact.

Errors raise StreamStoreError subclasses carrying .code (the LSS_E* value)
and .name (lss_errname: "EVERSION", ...).
"""

import ctypes
import ctypes.util
import glob
import json
import os
import select
import weakref
from collections import namedtuple

__all__ = [
    "Store", "Session", "Subscription", "Poke", "ANY", "NO_STREAM",
    "StreamStoreError", "InvalidArgument", "InvalidName", "InvalidJSON",
    "InvalidUUID", "InvalidToken", "NotAuthorized", "NotFound",
    "AlreadyExists", "VersionConflict", "DuplicateMessage", "Conflict",
    "Busy", "StorageError", "Closed", "Overflow", "NotSupported",
    "library", "version", "category", "group_member", "hash64",
]

# ---------------------------------------------------------------- codes
OK, ROW, DONE, AGAIN = 0, 100, 101, 102
EINVAL, ENOMEM, ENOSPACE, EJSON, ERANGE, ENAME, EUUID = -1, -2, -3, -4, -5, -6, -7
ETIME, ETOKEN, EAUTH, ENOTFOUND, EEXISTS, EVERSION = -8, -9, -10, -11, -12, -13
EDUPLICATE, ECONFLICT, EBUSY, EIO, EFULL, EBACKEND = -14, -15, -16, -17, -18, -19
ECLOSED, EOVERFLOW, ENOTSUP, EINTERNAL, ETOOBIG, EMISUSE = -20, -21, -22, -23, -24, -25

SYNC_OFF, SYNC_NORMAL, SYNC_FULL = 0, 1, 2
_SYNC = {"off": SYNC_OFF, "normal": SYNC_NORMAL, "full": SYNC_FULL}

TOKEN_MAX = 408
BATCH_MAX = 1000
_APPEND_EXPECT = 0x1
_READ_GLOBAL, _READ_GROUP, _READ_SINCE, _READ_UNTIL = 0x1, 0x2, 0x4, 0x8
_SUB_STREAM, _SUB_CATEGORY, _SUB_ALL = 1, 2, 3


class _Any:
    def __repr__(self):
        return "streamstore.ANY"


ANY = _Any()     # expected_version default: no check
NO_STREAM = -1   # expected_version: the stream must have no messages (None too)

# ---------------------------------------------------------------- structs
# Each matches include/streamstore.h field for field.  Pointers the library
# reads are c_char_p (assigning bytes keeps them alive in the struct) or
# c_void_p; views the library returns are lss_span {const char *p; size_t n}.
_c_int64 = ctypes.c_int64
_size_t = ctypes.c_size_t


class _Span(ctypes.Structure):
    _fields_ = [("p", ctypes.c_void_p), ("n", _size_t)]

    def bytes(self):
        return ctypes.string_at(self.p, self.n) if self.p else None


class _Options(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("allocator", ctypes.c_void_p),
                ("sync", ctypes.c_int), ("busy_timeout_ms", ctypes.c_int),
                ("metadata_file", ctypes.c_char_p),
                ("create_default", ctypes.c_int),
                ("group_commit_max", ctypes.c_int)]


class _MsgIn(ctypes.Structure):
    _fields_ = [("id", ctypes.c_char_p), ("id_n", _size_t),
                ("type", ctypes.c_char_p), ("type_n", _size_t),
                ("data", ctypes.c_char_p), ("data_n", _size_t),
                ("metadata", ctypes.c_char_p), ("metadata_n", _size_t)]


class _Append(ctypes.Structure):
    _fields_ = [("ns", ctypes.c_char_p), ("ns_n", _size_t),
                ("stream", ctypes.c_char_p), ("stream_n", _size_t),
                ("msgs", ctypes.POINTER(_MsgIn)), ("count", _size_t),
                ("flags", ctypes.c_uint), ("expected_version", _c_int64),
                ("rc", ctypes.c_int), ("position", _c_int64),
                ("global_position", _c_int64), ("actual_version", _c_int64),
                ("bad_index", _size_t), ("id", ctypes.c_char * 36)]


class _Message(ctypes.Structure):
    _fields_ = [("id", _Span), ("stream", _Span), ("type", _Span),
                ("position", _c_int64), ("global_position", _c_int64),
                ("data", _Span), ("metadata", _Span), ("time_us", _c_int64)]


class _ReadOpts(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("flags", ctypes.c_uint),
                ("position", _c_int64), ("global_position", _c_int64),
                ("batch_size", _c_int64), ("types", ctypes.POINTER(_Span)),
                ("types_n", _size_t), ("correlation", ctypes.c_char_p),
                ("correlation_n", _size_t), ("group_member", _c_int64),
                ("group_size", _c_int64), ("since_us", _c_int64),
                ("until_us", _c_int64)]


class _SubOpts(ctypes.Structure):
    _fields_ = [("struct_size", _size_t), ("kind", ctypes.c_int),
                ("name", ctypes.c_char_p), ("name_n", _size_t),
                ("position", _c_int64), ("group_member", _c_int64),
                ("group_size", _c_int64), ("replay_max", _c_int64),
                ("queue_bytes", _size_t)]


class _Poke(ctypes.Structure):
    _fields_ = [("stream", _Span), ("position", _c_int64),
                ("global_position", _c_int64)]


class _NsRow(ctypes.Structure):
    _fields_ = [("id", _Span), ("description", _Span),
                ("created_us", _c_int64), ("message_count", _c_int64),
                ("stream_count", _c_int64), ("last_activity_us", _c_int64),
                ("has_last_activity", ctypes.c_int)]


class _StreamRow(ctypes.Structure):
    _fields_ = [("stream", _Span), ("version", _c_int64),
                ("last_activity_us", _c_int64)]


class _CategoryRow(ctypes.Structure):
    _fields_ = [("category", _Span), ("stream_count", _c_int64),
                ("message_count", _c_int64)]


class _ImportRec(ctypes.Structure):
    _fields_ = [("id", ctypes.c_char_p), ("id_n", _size_t),
                ("stream", ctypes.c_char_p), ("stream_n", _size_t),
                ("type", ctypes.c_char_p), ("type_n", _size_t),
                ("position", _c_int64), ("global_position", _c_int64),
                ("data", ctypes.c_char_p), ("data_n", _size_t),
                ("metadata", ctypes.c_char_p), ("metadata_n", _size_t),
                ("time_us", _c_int64)]


# ---------------------------------------------------------------- loading
def _find_library():
    env = os.environ.get("LSS_LIBRARY")
    if env:
        return env
    found = ctypes.util.find_library("streamstore")
    if found:
        return found
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for path in sorted(glob.glob(os.path.join(root, "build*", "lib", "libstreamstore.so"))):
        return path
    raise OSError("libstreamstore.so not found: set LSS_LIBRARY to its path")


_P = ctypes.c_void_p        # opaque handles
_PP = ctypes.POINTER(ctypes.c_void_p)
_S = ctypes.c_char_p        # borrowed input bytes (with a length beside)
_I64P = ctypes.POINTER(_c_int64)
_SZP = ctypes.POINTER(_size_t)

_PROTOTYPES = {
    "lss_version_string": (ctypes.c_char_p, []),
    "lss_version_number": (ctypes.c_int, []),
    "lss_strerror": (ctypes.c_char_p, [ctypes.c_int]),
    "lss_errname": (ctypes.c_char_p, [ctypes.c_int]),
    "lss_options_init": (None, [ctypes.POINTER(_Options)]),
    "lss_open": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_Options), _PP]),
    "lss_close": (None, [_P]),
    "lss_db_errmsg": (ctypes.c_char_p, [_P]),
    "lss_conn_open": (ctypes.c_int, [_P, _PP]),
    "lss_conn_close": (None, [_P]),
    "lss_errmsg": (ctypes.c_char_p, [_P]),
    "lss_ns_create": (ctypes.c_int, [_P, _S, _size_t, _S, _size_t, _S, _size_t,
                                     ctypes.c_char_p, _size_t, _SZP, _I64P]),
    "lss_ns_delete": (ctypes.c_int, [_P, _S, _size_t, _I64P, _I64P]),
    "lss_ns_info": (ctypes.c_int, [_P, _S, _size_t,
                                   ctypes.POINTER(ctypes.POINTER(_NsRow))]),
    "lss_ns_list": (ctypes.c_int, [_P, _PP]),
    "lss_authorize": (ctypes.c_int, [_P, _S, _size_t, ctypes.c_uint,
                                     ctypes.POINTER(ctypes.c_void_p), _SZP]),
    "lss_append_one": (ctypes.c_int, [_P, ctypes.POINTER(_Append)]),
    "lss_append_many": (ctypes.c_int, [_P, ctypes.POINTER(_Append), _size_t]),
    "lss_read_opts_init": (None, [ctypes.POINTER(_ReadOpts)]),
    "lss_read_stream": (ctypes.c_int, [_P, _S, _size_t, _S, _size_t,
                                       ctypes.POINTER(_ReadOpts), _PP]),
    "lss_read_category": (ctypes.c_int, [_P, _S, _size_t, _S, _size_t,
                                         ctypes.POINTER(_ReadOpts), _PP]),
    "lss_read_last": (ctypes.c_int, [_P, _S, _size_t, _S, _size_t, _S, _size_t, _PP]),
    "lss_stream_version": (ctypes.c_int, [_P, _S, _size_t, _S, _size_t, _I64P]),
    "lss_list_streams": (ctypes.c_int, [_P, _S, _size_t, _S, _size_t, _S, _size_t,
                                        _c_int64, _PP]),
    "lss_list_categories": (ctypes.c_int, [_P, _S, _size_t, _PP]),
    "lss_cursor_next": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.POINTER(_Message))]),
    "lss_cursor_next_stream": (ctypes.c_int,
                               [_P, ctypes.POINTER(ctypes.POINTER(_StreamRow))]),
    "lss_cursor_next_category": (ctypes.c_int,
                                 [_P, ctypes.POINTER(ctypes.POINTER(_CategoryRow))]),
    "lss_cursor_next_ns": (ctypes.c_int, [_P, ctypes.POINTER(ctypes.POINTER(_NsRow))]),
    "lss_cursor_close": (None, [_P]),
    "lss_sub_opts_init": (None, [ctypes.POINTER(_SubOpts)]),
    "lss_subscribe": (ctypes.c_int, [_P, _S, _size_t, ctypes.POINTER(_SubOpts), _PP]),
    "lss_sub_fd": (ctypes.c_int, [_P]),
    "lss_sub_next": (ctypes.c_int, [_P, ctypes.POINTER(_Poke)]),
    "lss_sub_close": (None, [_P]),
    "lss_import": (ctypes.c_int, [_P, _S, _size_t, ctypes.POINTER(_ImportRec),
                                  _size_t, _SZP]),
    "lss_ns_clear": (ctypes.c_int, [_P, _S, _size_t]),
    "lss_ndjson_parse": (ctypes.c_int, [_P, _S, _size_t, ctypes.POINTER(_ImportRec),
                                        ctypes.c_char_p, _size_t]),
    "lss_ndjson_write": (ctypes.c_int, [ctypes.POINTER(_Message), ctypes.c_char_p,
                                        _size_t, _SZP]),
    "lss_category_len": (_size_t, [_S, _size_t]),
    "lss_hash64": (ctypes.c_int, [_S, _size_t, _I64P]),
    "lss_group_member": (ctypes.c_int, [_S, _size_t, _c_int64, _I64P]),
}


def _load():
    lib = ctypes.CDLL(_find_library())
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes
    return lib


library = _load()
_L = library


def version():
    """The linked library's version string ("0.1.0")."""
    return _L.lss_version_string().decode()


# ---------------------------------------------------------------- errors
class StreamStoreError(Exception):
    """A library error: .code (negative LSS_E* value), .name ("EVERSION"),
    and the session's detail text as the message."""

    def __init__(self, code, message=None):
        self.code = code
        self.name = _L.lss_errname(code).decode()
        self.message = message or _L.lss_strerror(code).decode()
        super().__init__("%s: %s" % (self.name, self.message))


class InvalidArgument(StreamStoreError):
    """LSS_EINVAL, and the argument errors below."""


class InvalidName(InvalidArgument):
    """LSS_ENAME: an empty stream/type or a bad namespace id."""


class InvalidJSON(InvalidArgument):
    """LSS_EJSON: data/metadata not a JSON object."""


class InvalidUUID(InvalidArgument):
    """LSS_EUUID."""


class InvalidToken(InvalidArgument):
    """LSS_ETOKEN."""


class NotAuthorized(StreamStoreError):
    """LSS_EAUTH."""


class NotFound(StreamStoreError):
    """LSS_ENOTFOUND (usually the namespace)."""


class AlreadyExists(StreamStoreError):
    """LSS_EEXISTS."""


class VersionConflict(StreamStoreError):
    """LSS_EVERSION; .actual is the stream's version (None: no messages)."""

    def __init__(self, code, message=None, actual=None):
        super().__init__(code, message)
        self.actual = actual


class DuplicateMessage(StreamStoreError):
    """LSS_EDUPLICATE: the id exists with other content; .id is that id."""

    def __init__(self, code, message=None, id=None):
        super().__init__(code, message)
        self.id = id


class Conflict(StreamStoreError):
    """LSS_ECONFLICT (import: position or id already exists)."""


class Busy(StreamStoreError):
    """LSS_EBUSY."""


class StorageError(StreamStoreError):
    """LSS_EIO, LSS_EFULL, LSS_EBACKEND."""


class Closed(StreamStoreError):
    """LSS_ECLOSED: the handle was closed."""


class Overflow(StreamStoreError):
    """LSS_EOVERFLOW: a subscription fell too far behind (it is dead)."""


class NotSupported(StreamStoreError):
    """LSS_ENOTSUP."""


_ERRORS = {
    EINVAL: InvalidArgument, ENAME: InvalidName, EJSON: InvalidJSON,
    EUUID: InvalidUUID, ETOKEN: InvalidToken, ERANGE: InvalidArgument,
    ETIME: InvalidArgument, ETOOBIG: InvalidArgument, EAUTH: NotAuthorized,
    ENOTFOUND: NotFound, EEXISTS: AlreadyExists, EVERSION: VersionConflict,
    EDUPLICATE: DuplicateMessage, ECONFLICT: Conflict, EBUSY: Busy,
    EIO: StorageError, EFULL: StorageError, EBACKEND: StorageError,
    ECLOSED: Closed, EOVERFLOW: Overflow, ENOTSUP: NotSupported,
}


def _error(code, message=None, **kw):
    cls = _ERRORS.get(code, StreamStoreError)
    if code == ENOMEM:
        return MemoryError(message or "libstreamstore: out of memory")
    return cls(code, message, **kw)


# ---------------------------------------------------------------- helpers
def _b(s):
    """str or bytes -> bytes."""
    if isinstance(s, bytes):
        return s
    if isinstance(s, str):
        return s.encode("utf-8", "surrogateescape")
    raise TypeError("expected str or bytes, not %s" % type(s).__name__)


def _s(b):
    return None if b is None else b.decode("utf-8", "surrogateescape")


def _json_bytes(v):
    """A payload: dict -> compact JSON; str/bytes -> as given (the library
    validates it and stores it byte for byte)."""
    if v is None:
        return None
    if isinstance(v, (bytes, str)):
        return _b(v)
    return json.dumps(v, ensure_ascii=False, separators=(",", ":")).encode()


def _loads(b):
    return None if b is None else json.loads(b)


def _version(v):
    return None if v < 0 else v


def _message(m, raw=False):
    """A row view -> a dict with copies (views die at the next step)."""
    data = m.data.bytes()
    meta = m.metadata.bytes()
    return {
        "id": m.id.bytes().decode(),
        "stream": _s(m.stream.bytes()),
        "type": _s(m.type.bytes()),
        "position": m.position,
        "global_position": m.global_position,
        "data": data if raw else _loads(data),
        "metadata": meta if raw else _loads(meta),
        "time_us": m.time_us,
    }


Poke = namedtuple("Poke", "stream position global_position")


def category(stream):
    """The category of a stream name: the text before the first '-'."""
    b = _b(stream)
    return _s(b[:_L.lss_category_len(b, len(b))])


def hash64(text):
    """Message DB's hash_64 of text."""
    b = _b(text)
    out = _c_int64()
    rc = _L.lss_hash64(b, len(b), ctypes.byref(out))
    if rc < 0:
        raise _error(rc)
    return out.value


def group_member(stream, size):
    """The consumer-group member of stream for a group of `size`, or None
    when the stream has no (or an empty) cardinal id."""
    b = _b(stream)
    out = _c_int64()
    rc = _L.lss_group_member(b, len(b), size, ctypes.byref(out))
    if rc < 0:
        raise _error(rc)
    return out.value if rc == 1 else None


# ---------------------------------------------------------------- store
class Store:
    """An opened store: a SQLite data directory, or ":memory:".

    sync: "full" (default; an acknowledged write survives power loss),
    "normal" (survives a process crash), "off", or an LSS_SYNC_* int.
    Closing the store closes its sessions and subscriptions first."""

    def __init__(self, url, sync="full", busy_timeout_ms=None,
                 metadata_file=None, create_default=False,
                 group_commit_max=None):
        o = _Options()
        _L.lss_options_init(ctypes.byref(o))
        o.sync = _SYNC[sync] if isinstance(sync, str) else int(sync)
        if busy_timeout_ms is not None:
            o.busy_timeout_ms = busy_timeout_ms
        if metadata_file is not None:
            o.metadata_file = _b(metadata_file)
        o.create_default = 1 if create_default else 0
        if group_commit_max is not None:
            o.group_commit_max = group_commit_max
        h = ctypes.c_void_p()
        rc = _L.lss_open(_b(url), ctypes.byref(o), ctypes.byref(h))
        if rc != OK:
            msg = _L.lss_db_errmsg(h).decode() if h.value else None
            _L.lss_close(h)
            raise _error(rc, msg)
        self._h = h
        self._children = weakref.WeakSet()   # sessions and subscriptions

    def session(self):
        """A new Session (one per thread)."""
        return Session(self)

    def close(self):
        if not self._h:
            return
        # Subscriptions and sessions must be closed before the store.
        children = list(self._children)
        for ch in children:
            if isinstance(ch, Subscription):
                ch.close()
        for ch in children:
            ch.close()
        _L.lss_close(self._h)
        self._h = None

    def _handle(self):
        if not self._h:
            raise Closed(ECLOSED, "store is closed")
        return self._h

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


class Session:
    """A session (lss_conn): its own read connection and scratch memory.
    Use it from one thread at a time.  Read methods return lists: the
    cursor is stepped to the end (or batch_size) and closed inside the
    call, so a session never holds a cursor between calls."""

    def __init__(self, store):
        h = ctypes.c_void_p()
        rc = _L.lss_conn_open(store._handle(), ctypes.byref(h))
        if rc != OK:
            raise _error(rc)
        self._h = h
        self.store = store
        store._children.add(self)

    def close(self):
        if self._h:
            _L.lss_conn_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # ---- plumbing
    def _handle(self):
        if not self._h:
            raise Closed(ECLOSED, "session is closed")
        return self._h

    def _check(self, rc, **kw):
        if rc < 0:
            raise _error(rc, _L.lss_errmsg(self._h).decode("utf-8", "replace"), **kw)
        return rc

    # ---- namespaces
    def create_namespace(self, ns, description="", token=None):
        """Create namespace ns; returns its token (shown only now)."""
        h = self._handle()
        nb, db = _b(ns), _b(description or "")
        tb = _b(token) if token is not None else None
        out = ctypes.create_string_buffer(TOKEN_MAX)
        n = _size_t()
        self._check(_L.lss_ns_create(h, nb, len(nb), db, len(db), tb,
                                     len(tb) if tb else 0, out, TOKEN_MAX,
                                     ctypes.byref(n), None))
        return out.raw[:n.value].decode()

    def delete_namespace(self, ns):
        """Delete ns and its messages; returns how many it held."""
        h = self._handle()
        nb = _b(ns)
        count = _c_int64()
        self._check(_L.lss_ns_delete(h, nb, len(nb), ctypes.byref(count), None))
        return count.value

    def clear_namespace(self, ns):
        """Delete every message of ns; global positions restart at 1."""
        nb = _b(ns)
        self._check(_L.lss_ns_clear(self._handle(), nb, len(nb)))

    @staticmethod
    def _ns_row(r, full):
        d = {"id": _s(r.id.bytes() or b""),
             "description": _s(r.description.bytes() or b""),
             "created_us": r.created_us, "message_count": r.message_count}
        if full:
            d["stream_count"] = r.stream_count
            d["last_activity_us"] = r.last_activity_us if r.has_last_activity else None
        return d

    def namespace_info(self, ns):
        nb = _b(ns)
        row = ctypes.POINTER(_NsRow)()
        self._check(_L.lss_ns_info(self._handle(), nb, len(nb), ctypes.byref(row)))
        return self._ns_row(row.contents, True)

    def list_namespaces(self):
        """Every namespace, newest first."""
        return self._drain(lambda h, cur: _L.lss_ns_list(h, cur),
                           _L.lss_cursor_next_ns, _NsRow,
                           lambda r: self._ns_row(r, False))

    def authorize(self, token):
        """The namespace a token belongs to (InvalidToken / NotAuthorized)."""
        tb = _b(token)
        p = ctypes.c_void_p()
        n = _size_t()
        self._check(_L.lss_authorize(self._handle(), tb, len(tb), 0,
                                     ctypes.byref(p), ctypes.byref(n)))
        return _s(ctypes.string_at(p.value, n.value))

    # ---- writes
    @staticmethod
    def _msg_in(m, type_=None, data=None, metadata=None, id=None, keep=None):
        """Fill an lss_msg_in; every bytes object is also put in `keep` so
        that it outlives the call whatever ctypes does with it."""
        tb, db = _b(type_), _json_bytes(data)
        if db is None:
            raise TypeError("data is required (a dict or JSON object text)")
        mb = _json_bytes(metadata)
        ib = _b(id) if id is not None else None
        keep.extend(x for x in (tb, db, mb, ib) if x is not None)
        m.type, m.type_n = tb, len(tb)
        m.data, m.data_n = db, len(db)
        if mb is not None:
            m.metadata, m.metadata_n = mb, len(mb)
        if ib is not None:
            m.id, m.id_n = ib, len(ib)

    def _append(self, ns, stream, msgs, expected_version):
        h = self._handle()
        keep = []
        arr = (_MsgIn * len(msgs))()
        for i, (t, d, md, mid) in enumerate(msgs):
            self._msg_in(arr[i], t, d, md, mid, keep)
        a = _Append()
        nb, sb = _b(ns), _b(stream)
        a.ns, a.ns_n = nb, len(nb)
        a.stream, a.stream_n = sb, len(sb)
        a.msgs = arr
        a.count = len(msgs)
        if expected_version is not ANY:
            a.flags = _APPEND_EXPECT
            a.expected_version = NO_STREAM if expected_version is None else expected_version
        rc = _L.lss_append_one(h, ctypes.byref(a))
        if rc == EVERSION:
            self._check(rc, actual=_version(a.actual_version))
        if rc == EDUPLICATE:
            self._check(rc, id=a.id.decode())
        self._check(rc)
        return a.position, a.global_position

    def append(self, ns, stream, type, data, metadata=None, id=None,
               expected_version=ANY):
        """Append one message; returns (position, global_position).

        data/metadata: dict, or JSON object text (str/bytes).  id: any UUID
        spelling, or None to generate one; re-sending the same id with the
        same content is an idempotent retry returning the original
        positions.  expected_version: ANY (default, no check), None or
        NO_STREAM (the stream must be empty), or the stream version the
        caller read; a mismatch raises VersionConflict."""
        return self._append(ns, stream, [(type, data, metadata, id)],
                            expected_version)

    def append_batch(self, ns, stream, messages, expected_version=ANY):
        """Append 1..1000 messages to one stream atomically.  messages:
        dicts with keys type, data[, metadata, id] or tuples (type, data[,
        metadata[, id]]).  Returns (position, global_position) of the last."""
        msgs = []
        for m in messages:
            if isinstance(m, dict):
                msgs.append((m["type"], m["data"], m.get("metadata"), m.get("id")))
            else:
                m = tuple(m) + (None,) * (4 - len(m))
                msgs.append(m[:4])
        if not 1 <= len(msgs) <= BATCH_MAX:
            raise InvalidArgument(EINVAL, "a batch holds 1 to %d messages" % BATCH_MAX)
        return self._append(ns, stream, msgs, expected_version)

    # ---- reads
    def _drain(self, open_fn, next_fn, row_type, convert):
        h = self._handle()
        cur = ctypes.c_void_p()
        self._check(open_fn(h, ctypes.byref(cur)))
        out = []
        row = ctypes.POINTER(row_type)()
        try:
            while True:
                rc = next_fn(cur, ctypes.byref(row))
                if rc != ROW:
                    break
                out.append(convert(row.contents))
        finally:
            _L.lss_cursor_close(cur)
        self._check(rc)
        return out

    @staticmethod
    def _read_opts(position, batch_size, types, correlation, consumer_group,
                   since_us, until_us, keep):
        o = _ReadOpts()
        _L.lss_read_opts_init(ctypes.byref(o))
        o.position = position
        o.batch_size = -1 if batch_size is None else batch_size
        if types:
            tb = [_b(t) for t in types]
            spans = (_Span * len(tb))()
            for i, t in enumerate(tb):
                spans[i].p = ctypes.cast(ctypes.c_char_p(t), ctypes.c_void_p).value
                spans[i].n = len(t)
            keep.extend(tb)
            keep.append(spans)
            o.types = spans
            o.types_n = len(tb)
        if correlation:
            cb = _b(correlation)
            keep.append(cb)
            o.correlation, o.correlation_n = cb, len(cb)
        if consumer_group is not None:
            o.flags |= _READ_GROUP
            o.group_member, o.group_size = consumer_group
        if since_us is not None:
            o.flags |= _READ_SINCE
            o.since_us = since_us
        if until_us is not None:
            o.flags |= _READ_UNTIL
            o.until_us = until_us
        return o

    def read_stream(self, ns, stream, position=0, batch_size=1000, types=None,
                    since_us=None, until_us=None, global_position=None,
                    raw=False):
        """Messages of one stream from stream position `position` (or, if
        given, from global position `global_position`), at most batch_size
        (None: all).  Each is a dict: id, stream, type, position,
        global_position, data, metadata (parsed JSON; bytes with raw=True),
        time_us."""
        keep = []
        o = self._read_opts(position, batch_size, types, None, None, since_us,
                            until_us, keep)
        if global_position is not None:
            o.flags |= _READ_GLOBAL
            o.global_position = global_position
        nb, sb = _b(ns), _b(stream)
        return self._drain(
            lambda h, cur: _L.lss_read_stream(h, nb, len(nb), sb, len(sb),
                                              ctypes.byref(o), cur),
            _L.lss_cursor_next, _Message, lambda m: _message(m, raw))

    def read_category(self, ns, category, position=1, batch_size=1000,
                      types=None, correlation=None, consumer_group=None,
                      since_us=None, until_us=None, raw=False):
        """Messages of a category ("" = all) from global position
        `position`.  consumer_group=(member, size) keeps the member's share;
        correlation keeps messages whose metadata.correlationStreamName is
        in that category."""
        keep = []
        o = self._read_opts(position, batch_size, types, correlation,
                            consumer_group, since_us, until_us, keep)
        nb, cb = _b(ns), _b(category)
        return self._drain(
            lambda h, cur: _L.lss_read_category(h, nb, len(nb), cb, len(cb),
                                                ctypes.byref(o), cur),
            _L.lss_cursor_next, _Message, lambda m: _message(m, raw))

    def read_last(self, ns, stream, type=None, raw=False):
        """The last message of a stream (optionally of a type), or None."""
        nb, sb = _b(ns), _b(stream)
        tb = _b(type) if type else None
        rows = self._drain(
            lambda h, cur: _L.lss_read_last(h, nb, len(nb), sb, len(sb), tb,
                                            len(tb) if tb else 0, cur),
            _L.lss_cursor_next, _Message, lambda m: _message(m, raw))
        return rows[0] if rows else None

    def stream_version(self, ns, stream):
        """The position of the stream's last message; None when it has none."""
        nb, sb = _b(ns), _b(stream)
        v = _c_int64()
        self._check(_L.lss_stream_version(self._handle(), nb, len(nb), sb, len(sb),
                                          ctypes.byref(v)))
        return _version(v.value)

    def list_streams(self, ns, prefix="", after="", limit=1000):
        """[{stream, version, last_activity_us}] by name, after `after`."""
        nb, pb, ab = _b(ns), _b(prefix), _b(after)
        return self._drain(
            lambda h, cur: _L.lss_list_streams(h, nb, len(nb), pb, len(pb), ab,
                                               len(ab), limit, cur),
            _L.lss_cursor_next_stream, _StreamRow,
            lambda r: {"stream": _s(r.stream.bytes()), "version": r.version,
                       "last_activity_us": r.last_activity_us})

    def list_categories(self, ns):
        """[{category, stream_count, message_count}] in byte order."""
        nb = _b(ns)
        return self._drain(
            lambda h, cur: _L.lss_list_categories(h, nb, len(nb), cur),
            _L.lss_cursor_next_category, _CategoryRow,
            lambda r: {"category": _s(r.category.bytes() or b""),
                       "stream_count": r.stream_count,
                       "message_count": r.message_count})

    # ---- subscriptions
    def subscribe(self, ns, category=None, stream=None, all=False, position=0,
                  consumer_group=None, replay_max=1000, queue_bytes=None):
        """Subscribe to a category, a stream or (all=True) every write.
        Category and stream subscriptions replay existing messages from
        `position` (a global position for categories, a stream position for
        streams) before live pokes."""
        if (category is not None) + (stream is not None) + bool(all) != 1:
            raise InvalidArgument(EINVAL, "give exactly one of category, stream, all")
        return Subscription(self, ns, category, stream, all, position,
                            consumer_group, replay_max, queue_bytes)

    # ---- import and export
    def export_ndjson(self, ns, batch_size=1000):
        """Yield the namespace's messages as NDJSON lines (bytes, each ending
        in b"\\n"), in global-position order, one page at a time."""
        position = 1
        buf = ctypes.create_string_buffer(4096)
        n = _size_t()

        def line(m):
            nonlocal buf
            rc = _L.lss_ndjson_write(ctypes.byref(m), buf, len(buf), ctypes.byref(n))
            if rc == ENOSPACE:
                buf = ctypes.create_string_buffer(n.value)
                rc = _L.lss_ndjson_write(ctypes.byref(m), buf, len(buf), ctypes.byref(n))
            self._check(rc)
            return buf.raw[:n.value], m.global_position

        nb = _b(ns)
        while True:
            o = self._read_opts(position, batch_size, None, None, None, None,
                                None, [])
            page = self._drain(
                lambda h, cur: _L.lss_read_category(h, nb, len(nb), b"", 0,
                                                    ctypes.byref(o), cur),
                _L.lss_cursor_next, _Message, line)
            if not page:
                return
            for text, _ in page:
                yield text
            position = page[-1][1] + 1

    def import_ndjson(self, ns, lines, force=False, batch=500):
        """Import NDJSON lines (bytes or str) into ns, keeping ids, positions
        and times; with force, clear ns first.  Each batch of records is one
        transaction.  Returns the number of records imported."""
        if force:
            self.clear_namespace(ns)
        nb = _b(ns)
        err = ctypes.create_string_buffer(512)
        recs, keep, total = [], [], 0

        def flush():
            nonlocal recs, keep, total
            if not recs:
                return
            arr = (_ImportRec * len(recs))(*recs)
            bad = _size_t()
            self._check(_L.lss_import(self._handle(), nb, len(nb), arr, len(recs),
                                      ctypes.byref(bad)))
            total += len(recs)
            recs, keep = [], []

        for lineno, text in enumerate(lines, 1):
            b = _b(text).rstrip(b"\r\n")
            if not b.strip():
                continue
            r = _ImportRec()
            rc = _L.lss_ndjson_parse(self._handle(), b, len(b), ctypes.byref(r),
                                     err, len(err))
            if rc != OK:
                raise _error(rc, "line %d: %s" % (lineno, err.value.decode("utf-8", "replace")))
            # The views may point into the session's scratch memory, which the
            # next parse reuses: copy what the record refers to.  (Reading a
            # c_char_p field would stop at a NUL; use the raw pointer.)
            c = _ImportRec()
            for f in ("id", "stream", "type", "data", "metadata"):
                p = _addr(r, f)
                if p is not None:
                    v = ctypes.string_at(p, getattr(r, f + "_n"))
                    keep.append(v)
                    setattr(c, f, v)
                    setattr(c, f + "_n", len(v))
            c.position, c.global_position, c.time_us = r.position, r.global_position, r.time_us
            recs.append(c)
            if len(recs) >= batch:
                flush()
        flush()
        return total


def _addr(struct, field):
    """The raw pointer value of a c_char_p field (without ctypes' conversion
    to a NUL-terminated bytes copy)."""
    off = getattr(type(struct), field).offset
    return ctypes.c_void_p.from_buffer(struct, off).value


class Subscription:
    """Pokes (stream, position, global_position) of committed messages, in
    global-position order.  fileno() is readable while pokes are queued, so
    a Subscription can be given to select/poll/selectors directly."""

    def __init__(self, session, ns, category, stream, all_, position,
                 consumer_group, replay_max, queue_bytes):
        o = _SubOpts()
        _L.lss_sub_opts_init(ctypes.byref(o))
        name = None
        if all_:
            o.kind = _SUB_ALL
        else:
            o.kind = _SUB_CATEGORY if category is not None else _SUB_STREAM
            name = _b(category if category is not None else stream)
            o.name, o.name_n = name, len(name)
        o.position = position
        if consumer_group is not None:
            o.group_member, o.group_size = consumer_group
        o.replay_max = -1 if replay_max is None else replay_max
        if queue_bytes is not None:
            o.queue_bytes = queue_bytes
        nb = _b(ns)
        h = ctypes.c_void_p()
        session._check(_L.lss_subscribe(session._handle(), nb, len(nb),
                                        ctypes.byref(o), ctypes.byref(h)))
        self._h = h
        self._fd = _L.lss_sub_fd(h)
        self.store = session.store
        self.store._children.add(self)

    def fileno(self):
        if not self._h:
            raise Closed(ECLOSED, "subscription is closed")
        return self._fd

    def next(self, timeout=None):
        """The next poke; waits up to `timeout` seconds (None: for ever,
        0: not at all) and returns None if none came."""
        p = _Poke()
        while True:
            if not self._h:
                raise Closed(ECLOSED, "subscription is closed")
            rc = _L.lss_sub_next(self._h, ctypes.byref(p))
            if rc == ROW:
                return Poke(_s(p.stream.bytes() or b""), p.position,
                            p.global_position)
            if rc != AGAIN:
                raise _error(rc)
            if timeout == 0:
                return None
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return None

    def drain(self):
        """Every poke queued now (possibly none)."""
        out = []
        while True:
            p = self.next(0)
            if p is None:
                return out
            out.append(p)

    def __iter__(self):
        """Blocks for each poke, for ever (until close or an error)."""
        while True:
            yield self.next()

    def close(self):
        if self._h:
            _L.lss_sub_close(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
