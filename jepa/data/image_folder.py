"""ImageNet-style image folders (`root/<class>/<image>.jpg`) as sample lists with a class map."""

from __future__ import annotations

import os

from jepa.data.csv_list import IMAGE_EXTENSIONS

__all__ = ["scan_image_folder"]


def scan_image_folder(root: str | os.PathLike) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """List the images of `root/<class>/...` (recursively inside each class folder).

    Classes are the sub-folder names in sorted order, labelled 0..C-1 (torchvision `ImageFolder` convention);
    images are files with a jpg / jpeg / png extension (any case), sorted by path.

    Returns:
        `([(absolute image path, label), ...], {class name: label})`.
    """
    root = os.path.abspath(os.fspath(root))
    if not os.path.isdir(root):
        raise FileNotFoundError(f"image folder {root!r} does not exist")
    classes = sorted(d.name for d in os.scandir(root) if d.is_dir())
    if not classes:
        raise ValueError(f"image folder {root!r}: expected one sub-folder per class, found none")
    class_map = {name: i for i, name in enumerate(classes)}
    samples: list[tuple[str, int]] = []
    for name in classes:
        found = []
        for dirpath, _, files in os.walk(os.path.join(root, name)):
            found.extend(os.path.join(dirpath, f) for f in files if f.lower().endswith(IMAGE_EXTENSIONS))
        samples.extend((p, class_map[name]) for p in sorted(found))
    if not samples:
        raise ValueError(f"image folder {root!r}: no jpg/jpeg/png images under {classes}")
    return samples, class_map
