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
            name="images",
            description="A folder of photos: random 64-pixel RGB patches to train on; every 10th image, whole, "
            "to validate; split 'all': every image whole",
            loader="aezoo_images.folder:load_folder",
            argument="PATH",
        )
    )
    register(
        aezoo.Dataset(
            name="fashion-mnist",
            description="Fashion-MNIST clothing, 28×28 grey (60k train incl. 5k val, 10k test)",
            loader="aezoo_images.datasets:load_fashion_mnist",
        )
    )
