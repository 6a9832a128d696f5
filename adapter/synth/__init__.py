"""Synthetic region data in the four source formats, for demos, load tests and reader tests.

A tool beside the product: it writes files the adapter reads, and imports nothing from the
adapter's data flow (sources, mapping, sync), so the generator cannot mirror a reader's bugs.
"""

from adapter.synth.generator import SynthConfig, SynthError, SynthSummary, generate

__all__ = ["SynthConfig", "SynthError", "SynthSummary", "generate"]
