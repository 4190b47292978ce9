"""Importers that turn other published data layouts into our processed layout (docs/processed-format.md)."""

from matmcl.importers.authors_bundle import BundleImport, import_authors_bundle

__all__ = ["BundleImport", "import_authors_bundle"]
