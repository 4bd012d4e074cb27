"""The class sets: shared vocabulary of every stage (params.yaml `labels`)."""

from __future__ import annotations

from avemo.params import Labels


def label_mapping(labels: Labels) -> dict[str, str]:
    """The raw-label -> class mapping chosen by `labels.set`."""
    return dict(labels.sets[labels.set])


def class_names(mapping: dict[str, str]) -> list[str]:
    """Class names in the order they first appear in the mapping: this order is the class index."""
    return list(dict.fromkeys(mapping.values()))


def class_set(labels: Labels) -> list[str]:
    """The class names of the chosen label set, in class-index order."""
    return class_names(label_mapping(labels))
