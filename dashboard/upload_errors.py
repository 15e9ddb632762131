"""Messages for upload errors on the import page, in the UI language and with the user's file names.

Uploads are saved as ``<upload id>_<name>`` in a temporary folder, so errors raised by the
readers name that file, in English. This module turns them into catalog text.
"""

from __future__ import annotations

import re
from pathlib import Path

from ingest.readers import SourceError
from messages import has_key, t

# The readers name a missing sheet only in their English text.
_SHEET_NAME = re.compile(r"no sheet named '([^']*)'")


def error_text(error: Exception, paths: dict[str, Path], names: dict[str, str], lang: str) -> str:
    """Return the message to show for ``error``, in ``lang`` and with the uploaded names.

    ``paths`` and ``names`` map a table to the saved temporary file and to the user's file
    name. A ``SourceError`` has a rule code with catalog text (``ingest.rule.<rule>``), which
    is returned with its fix. Any other error keeps its own text, with each temporary file
    path or name replaced by the user's file name.
    """
    text = str(error)
    rule = getattr(error, "rule", None)
    if isinstance(error, SourceError) and has_key(f"ingest.rule.{rule}.message"):
        file_name = next((names[table] for table, path in paths.items() if path.name in text), None)
        if file_name is None:
            file_name = next(iter(names.values()), "")
        value = error.detail
        sheet = _SHEET_NAME.search(text)
        if not value and sheet:
            value = sheet.group(1)
        values = {"file": file_name, "value": value, "column": "", "line": ""}
        message = t(f"ingest.rule.{rule}.message", lang, **values)
        separator = "" if lang == "zh" else " "
        return message + separator + t(f"ingest.rule.{rule}.fix", lang, **values)
    for table, path in paths.items():
        text = text.replace(str(path), names[table]).replace(path.name, names[table])
    return text
