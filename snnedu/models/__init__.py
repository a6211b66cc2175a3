"""Network architectures built from snnedu's pieces (time-first ``[T, B, ...]`` in, ``[T, B, C]`` out)."""
from .plif_net import PLIFDVSNet, PLIFStaticNet
from .probe import FrameCNN, LinearProbe, summed_frames
from .resnet import SpikingBasicBlock, SpikingResNet, resnet14, resnet19, resnet20
from .static import SpikingCNN, SpikingMLP, StaticClassifier

__all__ = ["PLIFStaticNet", "PLIFDVSNet", "StaticClassifier", "SpikingMLP", "SpikingCNN", "SpikingBasicBlock", "SpikingResNet", "resnet14",
           "resnet19", "resnet20", "LinearProbe", "FrameCNN", "summed_frames"]
