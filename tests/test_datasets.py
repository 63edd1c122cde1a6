"""Datasets: the full sets from disk, the offline MNIST fallback, and clear errors."""

from __future__ import annotations

import pytest
import torch

from aezoo.data import DataOptions
from aezoo.errors import AezooError
from aezoo.trainer import load_data


def test_mnist_splits_and_uint8_storage(mnist_dir):
    data = load_data("mnist")
    assert (len(data.train), len(data.val), len(data.test)) == (55000, 5000, 10000)
    batch = data.train.batch(torch.arange(4))
    assert batch["image"].dtype == torch.uint8 and batch["image"].shape == (4, 28, 28)
    assert data.info["shape"] == [1, 28, 28]
    again = load_data("mnist")  # the validation slice is fixed by its seed
    assert torch.equal(again.val.batch(torch.arange(50))["label"], data.val.batch(torch.arange(50))["label"])


def test_fashion_mnist_loads(mnist_dir):
    data = load_data("fashion-mnist")
    assert len(data.test) == 10000 and data.info["classes"][9] == "Ankle boot"


def test_mnist_falls_back_to_the_shipped_subset_offline(tmp_path, capsys):
    from aezoo_images.datasets import load_mnist

    data = load_mnist(DataOptions(root=tmp_path, download=False))
    assert (len(data.train), len(data.val), len(data.test)) == (9000, 1000, 2000)
    assert data.train.batch(torch.arange(4))["image"].dtype == torch.uint8
    labels = data.train.batch(torch.arange(200))["label"]
    assert len(set(labels.tolist())) == 10
    assert "first 10,000 training and first 2,000 test digits" in data.info["subset"]
    message = capsys.readouterr().err
    assert "using the subset aezoo ships (10,000 training and 2,000 test digits)" in message
    assert "--data-dir" in message


def test_the_subset_is_the_head_of_mnist(mnist_dir, tmp_path):
    """The shipped digits are MNIST's own first training and test digits, pixel for pixel, so a
    figure measured on the first 1,000 test digits is the same with either."""
    from aezoo_images.datasets import load_mnist

    full = load_data("mnist")
    subset = load_mnist(DataOptions(root=tmp_path, download=False))
    want = full.test.batch(torch.arange(2000))
    got = subset.test.batch(torch.arange(2000))
    assert torch.equal(want["image"], got["image"]) and torch.equal(want["label"], got["label"])


def test_fashion_mnist_missing_offline_is_a_clear_error(tmp_path):
    from aezoo_images.datasets import load_fashion_mnist

    with pytest.raises(AezooError, match=r"Fashion-MNIST is not in .* go online once"):
        load_fashion_mnist(DataOptions(root=tmp_path, download=False))


def test_dataset_argument_rules(mnist_dir):
    with pytest.raises(AezooError, match="takes no argument"):
        load_data("mnist:extra")
