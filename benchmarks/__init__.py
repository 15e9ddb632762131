"""Performance measurements of LoanLens at portfolio scale (see benchmarks/README.md)."""
