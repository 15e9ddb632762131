"""LoanLens Streamlit dashboard: the entry script ``app.py`` and one module per page."""
