"""Deterministic sample-county generator: bureau files plus the ground truth for them.

The generator is the pipeline's independent yardstick: it shares no code with `transforms`
(ID check characters, number parsing and matching are implemented again here).
"""

from generator.core import DatasetCounts, GenerationSummary, generate

__all__ = ["DatasetCounts", "GenerationSummary", "generate"]
