"""Datasets. Every loader tries the real data first and says in one line which data it returned."""
from .common import DataSplit, ImageTensorDataset, data_root, make_loaders, take_per_class
from .mnist import load_mnist
from .cifar10 import CIFAR10Dataset, load_cifar10, synthetic_cifar10

__all__ = ["DataSplit", "ImageTensorDataset", "data_root", "make_loaders", "take_per_class", "load_mnist",
           "load_cifar10", "synthetic_cifar10", "CIFAR10Dataset"]
