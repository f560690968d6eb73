"""A deliberately slow segmenter, to interrupt runs mid-work from another process.

``test-slow`` is the test-threshold segmenter plus a sleep of $LINGUINE_TEST_SLOW_S seconds per
call; on its first call it creates the file named by $LINGUINE_TEST_STARTED (if set), so a test
knows that tracking is under way.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from engine_fixtures import ThresholdSegmenter

from LinGuinELib.registry import register_segmentation


@register_segmentation("test-slow")
class SlowSegmenter(ThresholdSegmenter):
    def segment(self, image, positive_lps, negative_lps=None):
        started = os.environ.get("LINGUINE_TEST_STARTED")
        if started:
            Path(started).touch()
        time.sleep(float(os.environ.get("LINGUINE_TEST_SLOW_S", "1")))
        return super().segment(image, positive_lps, negative_lps)
