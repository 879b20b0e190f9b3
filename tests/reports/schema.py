"""The ETSI TS 119 102-2 schema, loaded offline: its imports resolved through ../shared's catalog."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"
CATALOG_NS = "{urn:oasis:names:tc:entity:xmlns:xml:catalog}"


class CatalogResolver(etree.Resolver):
    """Maps each remote schemaLocation the XSDs import to the local copy the catalog names."""

    def __init__(self, catalog: Path) -> None:
        super().__init__()
        root = etree.parse(str(catalog)).getroot()
        self.map = {e.get("systemId"): str(catalog.parent / e.get("uri")) for e in root.iter(f"{CATALOG_NS}system")}

    def resolve(self, system_url, public_id, context):  # type: ignore[no-untyped-def]
        local = self.map.get(system_url)
        if local is not None:
            return self.resolve_filename(local, context)
        if system_url.startswith(("http://", "https://")):
            raise AssertionError(f"schema import not in the catalog (no network here): {system_url}")
        return None


@cache
def vr_schema() -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(CatalogResolver(SCHEMAS / "catalog.xml"))
    doc = etree.parse(str(SCHEMAS / "etsi" / "ts_119102-2_v1.4.1.xsd"), parser)
    return etree.XMLSchema(doc)
