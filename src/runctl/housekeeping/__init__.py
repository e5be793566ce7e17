"""Checkpoint housekeeping: rank-and-prune, watch and review, over any runctl Store.

The same functions serve S3 prefixes and local directories (both are Stores); the CLI
(``runctl s3 cleanup|watch|review``, ``runctl checkpoint list|cleanup``) only renders.
"""

from __future__ import annotations

from .ranking import CleanupResult, cleanup, list_ranked, rank
from .review import Review, categorize, review
from .watch import Change, watch

__all__ = [
    "Change",
    "CleanupResult",
    "Review",
    "categorize",
    "cleanup",
    "list_ranked",
    "rank",
    "review",
    "watch",
]
