"""ctypes access to the libssl that CPython's :mod:`ssl` is linked against.

Why: CPython 3.11 cannot set TLS 1.3 cipher suites, named groups or signature algorithms, which the
ISO 15118-20 profile fixes (facts §6.1). asyncio only accepts :class:`ssl.SSLContext`, so a
different TLS library (pyOpenSSL) would not plug into our endpoints. Instead we call a handful of
OpenSSL setters on the ``SSL_CTX*`` inside an ``SSLContext``.

Robustness:

* symbols are looked up through ``dlopen(_ssl.__file__)``, whose dependency scope is exactly the
  libssl/libcrypto that ``_ssl`` uses (so no second copy of OpenSSL can be picked up);
* the ``SSL_CTX*`` is read from the object just past its ``PyObject`` header (CPython's
  ``PySSLContext`` layout) and is **verified** before use by reading state back through OpenSSL
  and comparing it with what Python reports (options, verify mode, minimum version), twice, with
  a change made through Python in between. Any mismatch raises :class:`TlsProfileUnavailable`;
  nothing is written through an unverified pointer.
"""

from __future__ import annotations

import _ssl
import ctypes
import ssl
from functools import cache
from typing import Any

from mcscomm.security.errors import TlsProfileUnavailable

# OpenSSL 3.0 <openssl/ssl.h> constants (the SSL_CTX_ctrl / SSL_ctrl commands behind the setter
# macros); ABI-stable across 1.1.1 and 3.x.
SSL_CTRL_SET_GROUPS_LIST = 92
SSL_CTRL_SET_SIGALGS_LIST = 98
SSL_CTRL_SET_CLIENT_SIGALGS_LIST = 102  # (101 is the int-array variant)
SSL_CTRL_GET_PEER_SIGNATURE_NID = 108
SSL_CTRL_GET_MIN_PROTO_VERSION = 130
SSL_CTRL_GET_NEGOTIATED_GROUP = 134
TLS1_3_VERSION = 0x0304

KEYLOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_VERIFIED = "_mcscomm_ssl_ctx"  # attribute caching the verified pointer on an SSLContext


@cache
def lib() -> Any:
    """The libssl/libcrypto of ``_ssl`` with typed signatures; TlsProfileUnavailable if absent."""
    if not ssl.HAS_TLSv1_3:
        raise TlsProfileUnavailable(f"{ssl.OPENSSL_VERSION} has no TLS 1.3")
    try:
        handle: Any = ctypes.CDLL(_ssl.__file__)
    except (OSError, AttributeError):
        # _ssl built into the interpreter: OpenSSL is linked into the executable itself.
        handle = ctypes.CDLL(None)
    vp, cp, i, lg = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_long
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "SSL_CTX_set_ciphersuites": (i, [vp, cp]),
        "SSL_CTX_ctrl": (lg, [vp, i, lg, vp]),
        "SSL_ctrl": (lg, [vp, i, lg, vp]),
        "SSL_CTX_get_options": (ctypes.c_uint64, [vp]),
        "SSL_CTX_get_verify_mode": (i, [vp]),
        "SSL_CTX_set_keylog_callback": (None, [vp, KEYLOG_CALLBACK]),
        "SSL_load_client_CA_file": (vp, [cp]),
        "SSL_CTX_set_client_CA_list": (None, [vp, vp]),
        "SSL_CTX_set0_CA_list": (None, [vp, vp]),
        "SSL_get_SSL_CTX": (vp, [vp]),
        "SSL_is_server": (i, [vp]),
        "SSL_get_peer_signature_type_nid": (i, [vp, ctypes.POINTER(i)]),
        "OBJ_nid2sn": (cp, [i]),
    }
    for name, (restype, argtypes) in signatures.items():
        try:
            fn = getattr(handle, name)
        except AttributeError:
            raise TlsProfileUnavailable(
                f"{ssl.OPENSSL_VERSION} lacks {name}; OpenSSL >= 1.1.1 is needed"
            ) from None
        fn.restype, fn.argtypes = restype, argtypes
    return handle


def _field_pointer(obj: object, index: int) -> int:
    """The ``index``-th pointer-sized field after the PyObject header of ``obj``."""
    address = id(obj) + object.__basicsize__ + index * ctypes.sizeof(ctypes.c_void_p)
    return ctypes.c_void_p.from_address(address).value or 0


def ssl_ctx_pointer(ctx: ssl.SSLContext) -> int:
    """The verified ``SSL_CTX*`` of ``ctx`` (see the module docstring)."""
    if not isinstance(ctx, ssl.SSLContext):
        raise TypeError("an ssl.SSLContext is required")
    libssl = lib()
    pointer = _field_pointer(ctx, 0)

    def agrees() -> bool:
        return (
            pointer != 0
            and libssl.SSL_CTX_get_options(pointer) == int(ctx.options)
            and libssl.SSL_CTX_get_verify_mode(pointer) & 0x3 == _openssl_verify_mode(ctx)
        )

    # Verified before: only the read-only comparison, no option flip on a live context.
    if getattr(ctx, _VERIFIED, None) == pointer and agrees():
        return pointer
    # Round trip: compare, flip an inert option through Python, compare again, restore.
    probe = ssl.OP_NO_COMPRESSION if hasattr(ssl, "OP_NO_COMPRESSION") else ssl.OP_NO_TICKET
    ok = agrees()
    if ok:
        original = ctx.options
        ctx.options = original ^ probe
        ok = agrees()
        ctx.options = original
        ok = ok and agrees()
    if not ok:
        raise TlsProfileUnavailable(
            "could not locate the SSL_CTX of this SSLContext (unexpected CPython layout); "
            "the ISO 15118-20 TLS profile cannot be enforced"
        )
    setattr(ctx, _VERIFIED, pointer)
    return pointer


def _openssl_verify_mode(ctx: ssl.SSLContext) -> int:
    # SSL_VERIFY_PEER = 1, SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 2 (as set by CPython's _ssl.c)
    if ctx.verify_mode == ssl.CERT_NONE:
        return 0
    if ctx.verify_mode == ssl.CERT_OPTIONAL:
        return 1
    return 3


def ssl_pointer(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int:
    """The verified ``SSL*`` of a connection, or 0 if it cannot be found safely."""
    inner = getattr(ssl_object, "_sslobj", None)
    if inner is None:
        return 0
    # PySSLSocket: PyObject_HEAD, PyObject *Socket, SSL *ssl, ...
    pointer = _field_pointer(inner, 1)
    if pointer == 0:
        return 0
    try:
        libssl = lib()
        ok = libssl.SSL_get_SSL_CTX(pointer) == ssl_ctx_pointer(ssl_object.context) and bool(
            libssl.SSL_is_server(pointer)
        ) == bool(ssl_object.server_side)
    except TlsProfileUnavailable:
        return 0
    return pointer if ok else 0


def nid_name(nid: int) -> str | None:
    name = lib().OBJ_nid2sn(nid) if nid > 0 else None
    return name.decode() if name else None
