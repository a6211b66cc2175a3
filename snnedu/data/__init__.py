"""Datasets. Every loader tries the real data first and says in one line which data it returned."""
from .common import DataSplit, ImageTensorDataset, data_root, make_loaders, take_per_class
from .mnist import load_mnist
from .cifar10 import CIFAR10Dataset, load_cifar10, synthetic_cifar10
from .events import EVENT_DTYPE, make_events, slice_time
from .aedat import AedatError, read_aedat20, read_aedat31, write_aedat20, write_aedat31
from .frames import events_to_frames, resize_frames
from .frame_cache import CacheError, FrameCache
from .dvs import (DVSAugment, DVSFrameDataset, FrameSetting, GESTURE_CLASSES, load_cifar10_dvs,
                  load_dvs128_gesture, time_first_collate)
from .tonic_adapter import TonicFrameDataset, from_tonic
from .nmnist import load_nmnist

__all__ = ["DataSplit", "ImageTensorDataset", "data_root", "make_loaders", "take_per_class", "load_mnist",
           "load_cifar10", "synthetic_cifar10", "CIFAR10Dataset",
           "EVENT_DTYPE", "make_events", "slice_time", "AedatError", "read_aedat20", "read_aedat31",
           "write_aedat20", "write_aedat31", "events_to_frames", "resize_frames", "CacheError", "FrameCache",
           "DVSAugment", "DVSFrameDataset", "FrameSetting", "GESTURE_CLASSES", "load_cifar10_dvs",
           "load_dvs128_gesture", "time_first_collate", "from_tonic", "TonicFrameDataset", "load_nmnist"]
