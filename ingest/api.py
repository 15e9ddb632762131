"""Public import API used by the import page, the CLI and examples."""

from __future__ import annotations

from ingest.columns import TABLES
from ingest.load import UsageError, list_loads, load_files, remove_load
from ingest.mapping import ColumnMapping, MappingError, load_mapping, save_mapping
from ingest.preview import Preview, preview_file
from ingest.report import FileReport, LoadReport, ValidationError

__all__ = [
    "TABLES", "ColumnMapping", "MappingError", "load_mapping", "save_mapping", "Preview", "preview_file",
    "load_files", "LoadReport", "FileReport", "ValidationError", "UsageError", "remove_load", "list_loads",
]
