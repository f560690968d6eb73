"""The LinGuinE module's logic: MRML <-> LinGuinELib adapters, importable without Qt or ctk."""

from .logic import LinGuinELogic, PreparedRun, TrackingFailed, TrackOutput

__all__ = ["LinGuinELogic", "PreparedRun", "TrackingFailed", "TrackOutput"]
