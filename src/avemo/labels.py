"""The class sets: shared vocabulary of every stage (params.yaml `labels`)."""

from __future__ import annotations


def label_mapping(labels: dict) -> dict[str, str]:
    """The raw-label -> class mapping chosen by `labels.set` in params.yaml."""
    name = labels["set"]
    if name not in labels["sets"]:
        raise ValueError(f"labels.set={name!r} is not one of {sorted(labels['sets'])}")
    return dict(labels["sets"][name])


def class_names(mapping: dict[str, str]) -> list[str]:
    """Class names in the order they first appear in the mapping: this order is the class index."""
    return list(dict.fromkeys(mapping.values()))


def class_set(labels: dict) -> list[str]:
    """The class names of the chosen label set, in class-index order."""
    return class_names(label_mapping(labels))
