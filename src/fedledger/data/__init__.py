"""Data sets by name and partitioners that split a training set among clients."""

from fedledger.data.datasets import (
    DATA_DIR_ENV,
    Dataset,
    dataset_names,
    find_mnist_files,
    load_dataset,
    mnist_search_dirs,
    stratified_split,
)
from fedledger.data.idx import parse_idx, read_idx
from fedledger.data.partition import (
    format_label_histogram,
    label_histogram,
    partition,
    partition_names,
)

__all__ = [
    "DATA_DIR_ENV",
    "Dataset",
    "dataset_names",
    "find_mnist_files",
    "format_label_histogram",
    "label_histogram",
    "load_dataset",
    "mnist_search_dirs",
    "parse_idx",
    "partition",
    "partition_names",
    "read_idx",
    "stratified_split",
]
