"""Network architectures built from snnedu's pieces (time-first ``[T, B, ...]`` in, ``[T, B, C]`` out)."""
from .static import SpikingCNN, SpikingMLP, StaticClassifier

__all__ = ["StaticClassifier", "SpikingMLP", "SpikingCNN"]
