"""Data layer: load image tables, split them, decode images once, and feed them to torch."""

from medknn.data.balanced_sampler import ClassBalancedBatchSampler
from medknn.data.cache import CACHE_ENV_VAR, decode_images, default_cache_dir, fit_square
from medknn.data.catalog import (
    DATA_ENV_VAR,
    DATASETS,
    DatasetInfo,
    list_datasets,
    load_dataset,
    resolve_data_root,
)
from medknn.data.cluster_sampler import ClusterBatchSampler, thumbnail_features
from medknn.data.dataset import CachedImageDataset
from medknn.data.dicom import DICOM_EXTENSIONS, DicomOptions, decode_dicom, dicom_options
from medknn.data.download import download_file
from medknn.data.few_shot import few_shot_indices
from medknn.data.image_file import read_image_bytes, read_image_file
from medknn.data.resample import oversample_indices
from medknn.data.samplers import StratifiedBatchSampler
from medknn.data.shuffle_sampler import ShuffledBatchSampler
from medknn.data.sources import (
    IMAGE_EXTENSIONS,
    load_csv_manifest,
    load_image_folder,
    load_medmnist_npz,
)
from medknn.data.splits import STRATEGIES, Split, make_split
from medknn.data.table import ArrayImageReader, FileImageReader, ImageReader, ImageTable
from medknn.data.transforms import (
    AUGMENTATIONS,
    MultiViewTransform,
    build_transforms,
    resize_size_for,
)

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
