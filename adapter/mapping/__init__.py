"""Pure mapping: domain records → profiled FHIR R4 resources (JSON-ready dicts).

No I/O except `load_mappings` (the ConceptMaps a region edits) and no clock. See mappings/README.md
for which source field becomes which FHIR element.
"""

from adapter.mapping.bundle import transaction_bundle
from adapter.mapping.codes import Mappings, MappingsError, load_mappings
from adapter.mapping.errors import MappingError
from adapter.mapping.identifiers import match_url, stable_digest
from adapter.mapping.mapper import map_record
from adapter.mapping.resource import MappedResource

__all__ = [
    "MappedResource",
    "MappingError",
    "Mappings",
    "MappingsError",
    "load_mappings",
    "map_record",
    "match_url",
    "stable_digest",
    "transaction_bundle",
]
