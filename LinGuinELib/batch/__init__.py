"""Batch runs over datasets of studies (manifest folders or reference-format record lists)."""
