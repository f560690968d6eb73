"""Qt parts of the LinGuinE module's panel (they need Slicer's application; the logic does not)."""
