"""The message catalog: every UI string in Simplified Chinese (default) and English.

The catalog is one namespace of dotted keys, stored as TOML files in this folder, one file
per area (``common.toml``, ``kpis.toml``, ...) so that pages can be edited independently.
Each key is a table with a ``zh`` and an ``en`` string; placeholders use ``str.format``
syntax::

    [kpis.active_balance]
    zh = "在贷余额"
    en = "Active balance"

A key defined in two files, or missing a language, is an error at load time.
"""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
CATALOG_DIR = Path(__file__).resolve().parent


def _flatten(table: dict, prefix: str, source: str, out: dict[str, dict[str, str]]) -> None:
    """Collect leaf tables holding language strings into ``out`` under dotted keys."""
    if any(language in table for language in LANGUAGES):
        missing = [language for language in LANGUAGES if not isinstance(table.get(language), str)]
        if missing:
            raise ValueError(f"catalog key {prefix!r} in {source} has no string for {missing}")
        if prefix in out:
            raise ValueError(f"catalog key {prefix!r} is defined twice (second time in {source})")
        out[prefix] = {language: table[language] for language in LANGUAGES}
        return
    for name, value in table.items():
        if not isinstance(value, dict):
            raise ValueError(
                f"catalog entry {prefix + '.' + name!r} in {source} must be a table "
                f"with zh and en strings, got {value!r}"
            )
        _flatten(value, f"{prefix}.{name}" if prefix else name, source, out)


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, dict[str, str]]:
    """Read every ``*.toml`` file in this folder into one key -> {language: text} map."""
    catalog: dict[str, dict[str, str]] = {}
    for path in sorted(CATALOG_DIR.glob("*.toml")):
        with path.open("rb") as handle:
            _flatten(tomllib.load(handle), "", path.name, catalog)
    return catalog


def t(key: str, lang: str = DEFAULT_LANGUAGE, **values) -> str:
    """Return the catalog text for ``key`` in ``lang``, formatted with ``values``.

    Raises
    ------
    KeyError
        If the key is not in the catalog, so a missing string fails loudly in tests
        instead of showing a raw key to users.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}; got {lang!r}")
    catalog = load_catalog()
    if key not in catalog:
        raise KeyError(f"message key {key!r} is not in the catalog (messages/*.toml)")
    text = catalog[key][lang]
    return text.format(**values) if values else text


def has_key(key: str) -> bool:
    """Tell whether ``key`` exists in the catalog."""
    return key in load_catalog()
