"""Data sets by name and partitioners that split a training set among clients."""

from fedledger.data.datasets import (
    DATA_DIR_ENV,
    Dataset,
    DatasetRequest,
    RawDataset,
    dataset_names,
    find_mnist_files,
    load_dataset,
    mnist_search_dirs,
    register_dataset,
    scale,
    split,
    standardise,
    stratified_split,
)
from fedledger.data.idx import parse_idx, read_idx
from fedledger.data.partition import (
    PartitionArgs,
    format_label_histogram,
    label_histogram,
    partition,
    partition_names,
    register_partition,
)

__all__ = [
    "DATA_DIR_ENV",
    "Dataset",
    "DatasetRequest",
    "PartitionArgs",
    "RawDataset",
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
    "register_dataset",
    "register_partition",
    "scale",
    "split",
    "standardise",
    "stratified_split",
]
