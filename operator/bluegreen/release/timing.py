"""How long to wait for what is not an event of the cluster, in seconds."""

from __future__ import annotations

REGISTRY = 5.0
"""While the image registry does not answer (resolveDigest: Required)."""
SAMPLE_RETRY = 0.5
"""An analysis window still running without a sample due (should not happen: a safety net)."""
