"""Super-resolution: a feature extractor at low resolution (encoder) and a residual body with a
PixelShuffle upsampler (decoder). Spatial sizes are free, so the ONNX models take any image size."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aezoo.data import Batch
from aezoo.errors import AezooError
from aezoo.image import ImageAutoEncoder, ImageDecoder, image_rows, to_float
from aezoo.model import AutoEncoder, ExportPart, LossOutput, TensorSpec
from aezoo_superres import color
from aezoo_superres.hparams import SuperResHParams


class LowResEncoder(nn.Module):
    """Low-resolution image → code: features concatenated with the image itself (the decoder's
    bicubic skip needs it)."""

    def __init__(self, hp: SuperResHParams) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(hp.channels, hp.features, 5, padding=2), nn.ReLU(inplace=True))

    def forward(self, low: torch.Tensor) -> torch.Tensor:
        return torch.cat([low, self.head(low)], dim=1)


class HighResDecoder(ImageDecoder):
    def __init__(self, hp: SuperResHParams) -> None:
        super().__init__()
        self.hp = hp
        layers: list[nn.Module] = []
        for _ in range(hp.depth):
            layers += [nn.Conv2d(hp.features, hp.features, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.upsample = nn.Sequential(
            nn.Conv2d(hp.features, hp.channels * hp.scale**2, 3, padding=1), nn.PixelShuffle(hp.scale)
        )

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        """Pixel logits (bce), or pixel values before clamping (l1, mse)."""
        c = self.hp.channels
        low, features = code[:, :c], code[:, c:]
        out = self.upsample(features + self.body(features))
        if self.hp.loss == "bce":
            return out
        return out + F.interpolate(low, scale_factor=self.hp.scale, mode="bicubic", align_corners=False)

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        out = self.logits(code)
        return torch.sigmoid(out) if self.hp.loss == "bce" else out.clamp(0, 1)


class SuperResolution(ImageAutoEncoder):
    def __init__(self, hp: SuperResHParams) -> None:
        super().__init__()
        self.hp = hp
        self.image_shape = (hp.channels, None, None)  # any height and width
        self.encoder = LowResEncoder(hp)
        self.decoder = HighResDecoder(hp)

    # -- data ----------------------------------------------------------------------------------

    def high_res(self, images: torch.Tensor) -> torch.Tensor:
        """Dataset images as float targets: luminance if the model is single-channel and the
        images are RGB, cropped to a multiple of the scale."""
        hr = to_float(images)
        if hr.shape[1] == 3 and self.hp.channels == 1:
            hr = color.rgb_to_y(hr)
        if hr.shape[1] != self.hp.channels:
            raise AezooError(
                f"superres with channels={self.hp.channels} cannot use {hr.shape[1]}-channel images; "
                "set --set channels=1 (grey or luminance) or 3 (RGB)"
            )
        s = self.hp.scale
        h, w = hr.shape[-2] // s * s, hr.shape[-1] // s * s
        if h == 0 or w == 0:
            raise AezooError(f"images of {hr.shape[-2]}×{hr.shape[-1]} pixels are smaller than the scale {s}")
        return hr[..., :h, :w]

    def downscale(self, hr: torch.Tensor) -> torch.Tensor:
        """Bicubic, antialiased (as PIL and MATLAB's imresize), rounded to 8 bits."""
        low = F.interpolate(
            hr, scale_factor=1 / self.hp.scale, mode="bicubic", antialias=True, align_corners=False
        )
        return low.clamp(0, 1).mul(255).round().div(255)

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        hr = self.high_res(self.images_in(batch))
        return self.downscale(hr), hr

    def example_batch(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """Smooth random pictures (low-frequency noise, upsampled). Their size changes with the
        batch size, so export validation and the conformance checks see several image sizes."""
        side = 12 * self.hp.scale + 2 * self.hp.scale * batch_size
        coarse = torch.rand(batch_size, self.hp.channels, 6, 6, generator=generator, device=self.device)
        smooth = F.interpolate(coarse, size=(side, side + self.hp.scale), mode="bicubic", align_corners=False)
        smooth = smooth.clamp(0, 1)
        return {"image": smooth.mul(255).round().to(torch.uint8)}

    def check_images(self, images: torch.Tensor) -> None:  # any size
        return None

    # -- training ------------------------------------------------------------------------------

    def loss(self, inputs: Any, targets: Any, step: int | None = None) -> LossOutput:
        out = self.decoder.logits(self.encoder(inputs))
        if self.hp.loss == "bce":
            loss = F.binary_cross_entropy_with_logits(out, targets)
        elif self.hp.loss == "l1":
            loss = F.l1_loss(out, targets)
        else:
            loss = F.mse_loss(out, targets)
        return LossOutput(loss, {self.hp.loss: loss.detach()})

    @torch.no_grad()
    def evaluate(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """Loss, BCE, and PSNR/SSIM on luminance with ``scale`` border pixels shaved, next to
        bicubic upscaling of the same input (PIL's a=-0.5, the usual baseline)."""
        metrics = super().evaluate(inputs, targets)
        out = self(inputs)
        metrics["bce"] = F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), targets)
        bicubic = color.bicubic_pil(inputs, self.hp.scale)
        for name, image in (("", out), ("bicubic_", bicubic)):
            y, ref = self._luma(image), self._luma(targets)
            metrics[f"{name}psnr_y"] = color.psnr(y, ref, self.hp.scale)
            metrics[f"{name}ssim_y"] = color.ssim(y, ref, self.hp.scale)
        return metrics

    def _luma(self, images: torch.Tensor) -> torch.Tensor:
        return color.rgb_to_y(images) if images.shape[1] == 3 else images

    # -- using it ------------------------------------------------------------------------------

    @torch.no_grad()
    def upscale(self, images: torch.Tensor) -> torch.Tensor:
        """``uint8 [N, C, H, W]`` (grey or RGB) → ``uint8 [N, C, sH, sW]``. RGB through a
        luminance model: Y by the network, colour (Cb, Cr) by bicubic upscaling."""
        self.eval()
        low = to_float(images.to(self.device))
        if low.shape[1] == 3 and self.hp.channels == 1:
            ycbcr = color.rgb_to_ycbcr(low)
            y = self(ycbcr[:, :1])
            cbcr = F.interpolate(
                ycbcr[:, 1:], scale_factor=self.hp.scale, mode="bicubic", align_corners=False
            )
            high = color.ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
        elif low.shape[1] == self.hp.channels:
            high = self(low)
        else:
            raise AezooError(
                f"a {low.shape[1]}-channel image does not fit a {self.hp.channels}-channel model"
            )
        return high.clamp(0, 1).mul(255).round().to(torch.uint8).cpu()

    def upscale_file(self, source: Path, target: str | os.PathLike[str]) -> Path:
        """Upscale an image file of any size into ``target`` (format from its extension)."""
        from PIL import Image

        from aezoo.fileio import atomic_path
        from aezoo.image import open_image, read_images

        target = Path(target)
        if target.suffix.lower() not in {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}:
            raise AezooError(f"{target}: give an image file name such as out.png")
        with open_image(source) as probe:
            mode = "L" if probe.mode in ("L", "1", "I;16") else "RGB"
        image = read_images([source], 1 if mode == "L" else 3)
        if mode == "L" and self.hp.channels == 3:
            image = image.repeat(1, 3, 1, 1)
        high = self.upscale(image)[0]
        array = high.permute(1, 2, 0).contiguous().numpy()
        picture = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
        with atomic_path(target) as tmp:
            picture.save(tmp, format=Image.registered_extensions()[target.suffix.lower()])
        return target

    # -- export and pictures -------------------------------------------------------------------

    def export_parts(self) -> dict[str, ExportPart]:
        parts = AutoEncoder.export_parts(self)  # not the fixed-size image descriptions
        c, s = self.hp.channels, self.hp.scale
        what = "grey values" if c == 1 else "RGB"
        spatial = {0: "batch", 2: "height", 3: "width"}
        parts["encoder"].inputs = [
            TensorSpec(
                "low_res",
                f"low-resolution images, float32 [batch, {c}, height, width], {what} in [0, 1] (uint8 / 255)"
                + (
                    "; for photos, the BT.601 luminance Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255"
                    if c == 1
                    else ""
                ),
                (0.0, 1.0),
                spatial,
            )
        ]
        parts["encoder"].outputs = [
            TensorSpec("code", f"the input ({c} channels) and its features, at low resolution")
        ]
        parts["decoder"].inputs = [TensorSpec("code", "the encoder's code", None, spatial)]
        parts["decoder"].outputs = [
            TensorSpec("high_res", f"images ×{s}: [batch, {c}, {s}·height, {s}·width] in [0, 1]", (0.0, 1.0))
        ]
        return parts

    def export_decoding(self) -> dict[str, Any] | None:
        """An image ``scale`` times the input's size; a luminance model says how to put colour back."""
        decoding = super().export_decoding() or {}
        decoding.update(scale=self.hp.scale, input="low_res")
        if self.hp.channels == 1:
            decoding.update(color="luminance", color_rebuild=color.REBUILD)
        return decoding

    @torch.no_grad()
    def pictures(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """``reconstructions``: bicubic over the model over the ground truth."""
        n = min(self.pictured_examples, len(inputs))
        if n == 1 and targets.shape[-1] > 96:  # one photo: show a 96-pixel crop of each, larger
            h, w = targets.shape[-2:]
            top, left = (h - 96) // 2, (w - 96) // 2
            crop = (slice(None), slice(None), slice(top, top + 96), slice(left, left + 96))
            rows = [color.bicubic_pil(inputs, self.hp.scale)[crop], self(inputs)[crop], targets[crop]]
            return {"reconstructions": image_rows([torch.cat(rows)], pad=4)}
        return {
            "reconstructions": image_rows(
                [color.bicubic_pil(inputs[:n], self.hp.scale), self(inputs[:n]), targets[:n]]
            )
        }


def build(hp: SuperResHParams) -> SuperResolution:
    return SuperResolution(hp)
