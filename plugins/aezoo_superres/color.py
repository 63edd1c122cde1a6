"""Colour conversion (ITU-R BT.601, as MATLAB's rgb2ycbcr) and the usual SR metrics."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

#: How a luminance model's output becomes a colour picture again, for the export manifest
#: (the same numbers as the functions below, and as :meth:`SuperResolution.upscale` does it).
REBUILD = {
    "standard": "ITU-R BT.601 studio swing, as MATLAB's rgb2ycbcr; values in [0, 1]",
    "rgb_to_ycbcr": {
        "offset": [16.0, 128.0, 128.0],
        "matrix": [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]],
        "rule": "[Y, Cb, Cr] = (offset + matrix · [R, G, B]) / 255, with R, G, B in [0, 1]",
    },
    "ycbcr_to_rgb": {
        "offset": [16.0, 128.0, 128.0],
        "matrix": [[298.082, 0.0, 408.583], [298.082, -100.291, -208.12], [298.082, 516.412, 0.0]],
        "rule": "[R, G, B] = clamp(matrix · ([Y, Cb, Cr] · 255 − offset) / 256 / 255, 0, 1)",
    },
    "chroma": "Cb and Cr upscaled ×scale by bicubic interpolation (a = −0.75, half-pixel centres, edge "
    "pixels repeated: torch's F.interpolate(mode='bicubic', align_corners=False))",
    "luma": "Y through encoder.onnx, then decoder.onnx (the decoder's input is the encoder's output)",
}


def rgb_to_y(rgb: torch.Tensor) -> torch.Tensor:
    """``[N, 3, H, W]`` RGB in [0, 1] → ``[N, 1, H, W]`` luminance in [16/255, 235/255]."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    return (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def rgb_to_ycbcr(rgb: torch.Tensor) -> torch.Tensor:
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    cb = (128.0 - 37.797 * r - 74.203 * g + 112.0 * b) / 255.0
    cr = (128.0 + 112.0 * r - 93.786 * g - 18.214 * b) / 255.0
    return torch.cat([y, cb, cr], dim=1)


def ycbcr_to_rgb(ycbcr: torch.Tensor) -> torch.Tensor:
    y = ycbcr[:, 0:1] * 255.0 - 16.0
    cb = ycbcr[:, 1:2] * 255.0 - 128.0
    cr = ycbcr[:, 2:3] * 255.0 - 128.0
    r = (298.082 * y + 408.583 * cr) / 256.0
    g = (298.082 * y - 100.291 * cb - 208.120 * cr) / 256.0
    b = (298.082 * y + 516.412 * cb) / 256.0
    return (torch.cat([r, g, b], dim=1) / 255.0).clamp(0, 1)


def bicubic_pil(low: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling as PIL does it (a = -0.5, like MATLAB), the baseline SR papers report.
    torch's own bicubic (a = -0.75) is sharper and scores about 0.3 dB higher on Set5 ×2."""
    from PIL import Image

    out = torch.empty(*low.shape[:2], low.shape[2] * scale, low.shape[3] * scale)
    array = low.detach().float().cpu().numpy()
    for i in range(array.shape[0]):
        for c in range(array.shape[1]):
            channel = Image.fromarray(array[i, c].astype(np.float32), mode="F")
            size = (array.shape[3] * scale, array.shape[2] * scale)
            out[i, c] = torch.from_numpy(np.array(channel.resize(size, Image.Resampling.BICUBIC)))
    return out.clamp(0, 1).to(low.device)


def _shave(image: torch.Tensor, border: int) -> torch.Tensor:
    return image[..., border:-border, border:-border] if border else image


def psnr(image: torch.Tensor, reference: torch.Tensor, border: int) -> torch.Tensor:
    """Mean PSNR in dB for values in [0, 1], measured in 8-bit units, borders shaved."""
    a, b = _shave(image, border) * 255.0, _shave(reference, border) * 255.0
    mse = (a - b).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return (10 * torch.log10(255.0**2 / mse)).mean()


def ssim(image: torch.Tensor, reference: torch.Tensor, border: int) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: 11×11 Gaussian window, σ = 1.5) on 8-bit values, borders shaved."""
    a, b = _shave(image, border).double() * 255.0, _shave(reference, border).double() * 255.0
    size = min(11, a.shape[-2], a.shape[-1])
    size -= 1 - size % 2  # odd, and no larger than the image (tiny images get a smaller window)
    coords = torch.arange(size, dtype=torch.float64, device=a.device) - size // 2
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = (g[:, None] * g[None, :]) / g.sum() ** 2
    window = window.expand(a.shape[1], 1, size, size)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=x.shape[1])

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return value.flatten(1).mean(1).mean().float()
