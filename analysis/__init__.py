"""Portfolio metrics and statistics as plain functions; no Streamlit imports.

Every function takes a DuckDB connection (or data frames) and returns data frames or
result objects, so the dashboard pages, the ``python -m analysis`` report command and a
notebook share one code path.
"""
