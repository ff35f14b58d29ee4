"""Security for ISO 15118-20: test PKI, TLS 1.3 contexts (-20 profile), XML signatures.

* :mod:`mcscomm.security.pki` — create and load the test PKI (``manifest.json`` roles);
* :mod:`mcscomm.security.tls` — SECC/EVCC ``ssl.SSLContext`` builders and handshake hooks;
* :mod:`mcscomm.security.xmldsig` — sign/verify signable message parts via the codec;
* :mod:`mcscomm.security.chain` — signer certificate path validation;
* :mod:`mcscomm.security.errors` — the typed errors.

See ``docs/security.md``.
"""
