"""The post-training loop: stored search traces -> training data -> a LoRA-tuned model served again.

- :mod:`.data` — ``longthink export --format sft|dpo|prm``: verified solutions, preference pairs and step labels
  from the store, deduplicated, split by problem; :mod:`.manifest` writes them with a provenance manifest.
- :mod:`.train` — ``longthink train``: LoRA fine-tuning with TRL and PEFT (extra ``train``), resumable.
- :mod:`.gguf_merge` — the adapter merged into the base GGUF, so the embedded engine serves the trained model.
"""

from longthink.post_training.data import (
    FORMATS,
    Dataset,
    DpoPair,
    ExportOptions,
    PrmExample,
    SftExample,
    build_dataset,
    dataset_from_store,
)
from longthink.post_training.manifest import DataManifest, read_split, write_dataset

__all__ = [
    "FORMATS",
    "DataManifest",
    "Dataset",
    "DpoPair",
    "ExportOptions",
    "PrmExample",
    "SftExample",
    "build_dataset",
    "dataset_from_store",
    "read_split",
    "write_dataset",
]
