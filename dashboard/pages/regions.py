"""Page: regions (placeholder until the page is built)."""

from dashboard import common

common.coming_soon("page.regions")
