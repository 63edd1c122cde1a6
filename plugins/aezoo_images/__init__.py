"""Built-in image datasets: MNIST and Fashion-MNIST (registered through the aezoo hooks)."""

from __future__ import annotations

import aezoo


@aezoo.hookimpl
def aezoo_register_datasets(register):
    register(
        aezoo.Dataset(
            name="mnist",
            description="MNIST handwritten digits, 28×28 grey (60k train incl. 5k val, 10k test)",
            loader="aezoo_images.datasets:load_mnist",
        )
    )
    register(
        aezoo.Dataset(
            name="fashion-mnist",
            description="Fashion-MNIST clothing, 28×28 grey (60k train incl. 5k val, 10k test)",
            loader="aezoo_images.datasets:load_fashion_mnist",
        )
    )
