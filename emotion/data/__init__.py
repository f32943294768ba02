"""FER2013 loaders (the CSV, image folders, kagglehub), a validation split and a content-keyed cache.

    dataset = load("../shared/fer2013")       # or a fer2013.csv, or "kaggle"
    train, val, test = training_splits(dataset)

One module per source: `fer_csv`, `folders` (with its `cache`), `sources` (the dispatch, kagglehub,
counting faces); `dataset` holds what they all return.
"""

from .dataset import (
                      DATA_WHAT,
                      MIN_TRAIN_FACES,
                      DataError,
                      Dataset,
                      LoadReport,
                      Split,
                      limit_training_faces,
                      split_validation,
                      training_splits,
)
from .fer_csv import CSV_SPLITS, load_csv
from .folders import FOLDER_SPLITS, IMAGE_SUFFIXES, load_folder
from .sources import KAGGLE_DATASET, count_faces, download_kaggle, load

__all__ = [
    "CSV_SPLITS", "DATA_WHAT", "FOLDER_SPLITS", "IMAGE_SUFFIXES", "KAGGLE_DATASET",
    "MIN_TRAIN_FACES", "DataError", "Dataset", "LoadReport", "Split",
    "count_faces", "download_kaggle", "limit_training_faces", "load", "load_csv", "load_folder",
    "split_validation", "training_splits",
]
