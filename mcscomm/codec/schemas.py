"""Locate and load the XSD files that every XML document is validated against.

The schemas live in one folder (imports use bare ``schemaLocation`` file names):
``V2G_CI_AppProtocol.xsd``, ``V2G_CI_CommonTypes.xsd``, ``V2G_CI_CommonMessages.xsd``,
``V2G_CI_DC.xsd`` and ``xmldsig-core-schema.xsd``. mcscomm ships its own copies (written from
the ISO 15118-20 facts, same structure as the ISO files); a user who owns the official ISO files
can point mcscomm at a folder holding them instead (put ``xmldsig-core-schema.xsd`` next to the
-20 files, see ``docs/schemas.md``).

Which folder is used, first match wins:

1. the ``schema_dir`` argument (``XmlCodec(schema_dir=...)``, ``load_schema(..., schema_dir)``);
2. the environment variable ``MCSCOMM_SCHEMA_DIR``;
3. ``mcscomm/schemas`` inside the installed package (a wheel force-includes ``schemas/`` there);
4. ``schemas/`` at the root of a source checkout or editable install.

Schemas are parsed with a hardened parser: no DTD loading, no entity expansion, no network, and
a resolver that serves ``xs:import``/``xs:include`` only from files inside the schema folder.
Compiled schemas are cached per (file, folder).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree

__all__ = [
    "APP_PROTOCOL",
    "COMMON_MESSAGES",
    "COMMON_TYPES",
    "DC",
    "ENV_VAR",
    "NAMESPACE_SCHEMAS",
    "SCHEMA_FILES",
    "XMLDSIG",
    "SchemaLoadError",
    "load_schema",
    "schema_dir",
    "schema_for_namespace",
]

#: Environment variable naming a folder of XSD files to use instead of the bundled ones.
ENV_VAR = "MCSCOMM_SCHEMA_DIR"

APP_PROTOCOL = "V2G_CI_AppProtocol.xsd"
COMMON_TYPES = "V2G_CI_CommonTypes.xsd"
COMMON_MESSAGES = "V2G_CI_CommonMessages.xsd"
DC = "V2G_CI_DC.xsd"
XMLDSIG = "xmldsig-core-schema.xsd"

#: Every file a schema folder must hold.
SCHEMA_FILES: tuple[str, ...] = (APP_PROTOCOL, COMMON_TYPES, COMMON_MESSAGES, DC, XMLDSIG)

#: Target namespace -> the file that declares it (facts §0, §3).
NAMESPACE_SCHEMAS: dict[str, str] = {
    "urn:iso:15118:2:2010:AppProtocol": APP_PROTOCOL,
    "urn:iso:std:iso:15118:-20:CommonTypes": COMMON_TYPES,
    "urn:iso:std:iso:15118:-20:CommonMessages": COMMON_MESSAGES,
    "urn:iso:std:iso:15118:-20:DC": DC,
    "http://www.w3.org/2000/09/xmldsig#": XMLDSIG,
}

# mcscomm/codec/schemas.py -> mcscomm/ -> repository root
_PACKAGE_DIR = Path(__file__).resolve().parent.parent
_PACKAGED_SCHEMAS = _PACKAGE_DIR / "schemas"
_CHECKOUT_SCHEMAS = _PACKAGE_DIR.parent / "schemas"


class SchemaLoadError(RuntimeError):
    """A schema folder or file is missing, unreadable, refers outside its folder or fails to
    compile. This is a configuration problem on our side, never bad input from a peer."""


def _is_schema_folder(path: Path) -> bool:
    return (path / COMMON_TYPES).is_file()


def schema_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """Return the folder holding the XSD files, resolved to an absolute path.

    ``override`` (or else ``$MCSCOMM_SCHEMA_DIR``) wins when given and must be an existing
    directory; otherwise the packaged folder, then the checkout's ``schemas/``.
    Raises :class:`SchemaLoadError` if no usable folder exists.
    """
    return _locate(override)


def _locate(override: str | os.PathLike[str] | None) -> Path:
    explicit = override if override is not None else os.environ.get(ENV_VAR) or None
    if explicit is not None:
        path = Path(explicit).expanduser().resolve()
        if not path.is_dir():
            source = "schema_dir argument" if override is not None else f"${ENV_VAR}"
            raise SchemaLoadError(f"{source} {str(path)!r} is not a directory")
        return path
    for candidate in (_PACKAGED_SCHEMAS, _CHECKOUT_SCHEMAS):
        if _is_schema_folder(candidate):
            return candidate
    raise SchemaLoadError(
        f"no schema folder found (looked in {_PACKAGED_SCHEMAS} and {_CHECKOUT_SCHEMAS}); "
        f"set ${ENV_VAR}"
    )


class _FolderResolver(etree.Resolver):
    """Serve only local files inside one folder; refuse everything else (network, other dirs)."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self._folder = folder

    # lxml-stubs declare resolve() without its context argument and omit resolve_filename().
    def resolve(  # type: ignore[override]
        self, system_url: str | None, public_id: str | None, context: Any
    ) -> Any:
        if not system_url:
            raise SchemaLoadError("schema reference without a location")
        url = system_url
        if url.startswith("file://"):
            url = unquote(urlsplit(url).path)
        elif "://" in url:
            raise SchemaLoadError(f"schema reference to {system_url!r} refused (no network)")
        target = (self._folder / url).resolve()
        if not target.is_relative_to(self._folder):
            raise SchemaLoadError(f"schema reference to {system_url!r} leaves {self._folder}")
        return self.resolve_filename(str(target), context)  # type: ignore[attr-defined]


def _hardened_parser(folder: Path) -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
    )
    parser.resolvers.add(_FolderResolver(folder))
    return parser


def _file_name(name: str) -> str:
    """Accept ``"V2G_CI_DC.xsd"`` or ``"V2G_CI_DC"``; refuse anything that is not a bare name."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise SchemaLoadError(f"schema name {name!r} must be a bare file name")
    return name if name.endswith(".xsd") else f"{name}.xsd"


@functools.lru_cache(maxsize=64)
def _compile(file_name: str, folder: Path) -> etree.XMLSchema:
    path = folder / file_name
    if not path.is_file():
        raise SchemaLoadError(f"schema file {str(path)!r} not found")
    try:
        document = etree.parse(str(path), _hardened_parser(folder))
        return etree.XMLSchema(document)
    except SchemaLoadError:
        raise
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError, OSError) as exc:
        raise SchemaLoadError(f"cannot load schema {str(path)!r}: {exc}") from exc


def load_schema(name: str, schema_dir: str | os.PathLike[str] | None = None) -> etree.XMLSchema:
    """Return the compiled schema ``name`` (e.g. ``"V2G_CI_DC.xsd"``) from the schema folder.

    ``schema_dir`` overrides the folder lookup of :func:`schema_dir`. The result is cached;
    the same object is returned for the same file and folder.
    """
    return _compile(_file_name(name), _locate(schema_dir))


def schema_for_namespace(
    namespace: str, schema_dir: str | os.PathLike[str] | None = None
) -> etree.XMLSchema:
    """Return the compiled schema declaring ``namespace`` (the root element's namespace)."""
    try:
        file_name = NAMESPACE_SCHEMAS[namespace]
    except KeyError:
        raise SchemaLoadError(f"no schema for namespace {namespace!r}") from None
    return load_schema(file_name, schema_dir)
