"""Data layer: load image tables, split them, decode images once, and feed them to torch."""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that a module needing one light part (the catalogue of named data
# sets for `medknn datasets`) does not import torch with the samplers and datasets.
_LAZY = {
    "ClassBalancedBatchSampler": "medknn.data.balanced_sampler",
    "CACHE_ENV_VAR": "medknn.data.cache",
    "decode_images": "medknn.data.cache",
    "default_cache_dir": "medknn.data.cache",
    "fit_square": "medknn.data.cache",
    "DATA_ENV_VAR": "medknn.data.catalog",
    "DATASETS": "medknn.data.catalog",
    "DatasetInfo": "medknn.data.catalog",
    "list_datasets": "medknn.data.catalog",
    "load_dataset": "medknn.data.catalog",
    "resolve_data_root": "medknn.data.catalog",
    "ClusterBatchSampler": "medknn.data.cluster_sampler",
    "thumbnail_features": "medknn.data.cluster_sampler",
    "CachedImageDataset": "medknn.data.dataset",
    "DICOM_EXTENSIONS": "medknn.data.dicom",
    "DicomOptions": "medknn.data.dicom",
    "decode_dicom": "medknn.data.dicom",
    "dicom_options": "medknn.data.dicom",
    "download_file": "medknn.data.download",
    "few_shot_indices": "medknn.data.few_shot",
    "read_image_bytes": "medknn.data.image_file",
    "read_image_file": "medknn.data.image_file",
    "oversample_indices": "medknn.data.resample",
    "StratifiedBatchSampler": "medknn.data.samplers",
    "ShuffledBatchSampler": "medknn.data.shuffle_sampler",
    "IMAGE_EXTENSIONS": "medknn.data.sources",
    "load_csv_manifest": "medknn.data.sources",
    "load_image_folder": "medknn.data.sources",
    "load_medmnist_npz": "medknn.data.sources",
    "STRATEGIES": "medknn.data.splits",
    "Split": "medknn.data.splits",
    "make_split": "medknn.data.splits",
    "ArrayImageReader": "medknn.data.table",
    "FileImageReader": "medknn.data.table",
    "ImageReader": "medknn.data.table",
    "ImageTable": "medknn.data.table",
    "AUGMENTATIONS": "medknn.data.transforms",
    "MultiViewTransform": "medknn.data.transforms",
    "build_transforms": "medknn.data.transforms",
    "resize_size_for": "medknn.data.transforms",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'medknn.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = [
    "AUGMENTATIONS",
    "CACHE_ENV_VAR",
    "DATASETS",
    "DATA_ENV_VAR",
    "DICOM_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "STRATEGIES",
    "ArrayImageReader",
    "CachedImageDataset",
    "ClassBalancedBatchSampler",
    "ClusterBatchSampler",
    "DatasetInfo",
    "DicomOptions",
    "FileImageReader",
    "ImageReader",
    "ImageTable",
    "MultiViewTransform",
    "ShuffledBatchSampler",
    "Split",
    "StratifiedBatchSampler",
    "build_transforms",
    "decode_dicom",
    "decode_images",
    "default_cache_dir",
    "dicom_options",
    "download_file",
    "few_shot_indices",
    "fit_square",
    "list_datasets",
    "load_csv_manifest",
    "load_dataset",
    "load_image_folder",
    "load_medmnist_npz",
    "make_split",
    "oversample_indices",
    "read_image_bytes",
    "read_image_file",
    "resize_size_for",
    "resolve_data_root",
    "thumbnail_features",
]
