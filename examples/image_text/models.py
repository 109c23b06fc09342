"""Image and text encoders (own code, torch only).

* :class:`ImageEncoder`: a small ResNet whose last stage is an ``M x M x D`` local feature block
  (8 x 8 for 64 x 64 images; the grid side is a constructor argument) and whose global vector is
  the mean of the cells.
* :class:`TextEncoder`: token embedding + learned positions + a pre-norm Transformer encoder,
  masked mean over tokens: one vector per sentence, and one per report (the report's tokens
  encoded as one sequence).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["ImageEncoder", "ImageFeatures", "TextEncoder"]


class ImageFeatures(NamedTuple):
    """Output of :class:`ImageEncoder`.

    Attributes:
        local: ``(B, M, M, D)`` cell features (channel axis last).
        pooled: ``(B, D)`` mean over cells.
    """

    local: Tensor
    pooled: Tensor


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, c), c)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel2: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.n1 = _norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel2, 1, kernel2 // 2, bias=False)
        self.n2 = _norm(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _norm(c_out))

    def forward(self, x: Tensor) -> Tensor:
        h = torch.relu(self.n1(self.conv1(x)))
        return torch.relu(self.n2(self.conv2(h)) + self.skip(x))


class ImageEncoder(nn.Module):
    """ResNet-style encoder exposing a local feature block and a pooled vector.

    A stride-2 stem, then stages of basic residual blocks doubling the width and halving the
    resolution until the map is ``grid x grid``, then a 1x1 projection to ``dim`` channels.
    With ``context_kernel=1`` the second convolution of every downsampling block is 1x1, so
    each cell sees a neighbourhood (receptive field 23 px at 64x64, about 3 cells) rather than
    most of the image (47 px with ``context_kernel=3``): local features stay local.

    Args:
        image_size: input side (power-of-two multiple of ``grid``, at least ``2 * grid``).
        grid: side M of the local block.
        width: channels after the stem.
        dim: channels D of the local block and the pooled vector.
        blocks: residual blocks per stage.
        context_kernel: kernel (1 or 3) of the second convolution in the downsampling stages.
        coordinates: append the pixel's (x, y) position as two input channels (CoordConv), so
            cells know where they are and sentences naming a zone can match them.

    Example:
        >>> enc = ImageEncoder(64, grid=8, width=8, dim=16)
        >>> f = enc(torch.zeros(2, 1, 64, 64))
        >>> f.local.shape, f.pooled.shape
        (torch.Size([2, 8, 8, 16]), torch.Size([2, 16]))
    """

    def __init__(self, image_size: int = 64, *, grid: int = 8, width: int = 16, dim: int = 64,
                 blocks: int = 1, context_kernel: int = 1, coordinates: bool = True) -> None:
        super().__init__()
        ratio = image_size // grid
        if image_size % grid or ratio < 2 or ratio & (ratio - 1):
            raise ValueError(
                f"image_size / grid must be a power of two >= 2, got {image_size} / {grid}"
            )
        if context_kernel not in (1, 3):
            raise ValueError(f"context_kernel must be 1 or 3, got {context_kernel}")
        self.image_size, self.grid, self.dim = image_size, grid, dim
        n_down = int(math.log2(ratio)) - 1  # the stem already halves the resolution
        self.coordinates = coordinates
        c = (torch.arange(image_size, dtype=torch.float32) + 0.5) / image_size * 2 - 1
        self.register_buffer("coords", torch.stack(torch.meshgrid(c, c, indexing="xy"))[None],
                             persistent=False)
        layers: list[nn.Module] = [
            nn.Conv2d(3 if coordinates else 1, width, 3, 2, 1, bias=False), _norm(width),
            nn.ReLU(inplace=True),
        ]
        c = width
        for stage in range(n_down + 1):
            c_out = width * 2**stage
            for b in range(blocks):
                stride = 2 if (stage > 0 and b == 0) else 1
                layers.append(_BasicBlock(c, c_out, stride, context_kernel if stage > 0 else 3))
                c = c_out
        self.body = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c, dim, 1)

    def forward(self, images: Tensor) -> ImageFeatures:
        """``images (B, 1, S, S)`` -> local ``(B, M, M, D)`` and pooled ``(B, D)``."""
        if images.dim() != 4 or images.shape[1:] != (1, self.image_size, self.image_size):
            raise ValueError(
                f"images: expected shape (B, 1, {self.image_size}, {self.image_size}), "
                f"got {tuple(images.shape)}"
            )
        x = (images - 0.5) / 0.25
        if self.coordinates:
            x = torch.cat([x, self.coords.expand(x.shape[0], -1, -1, -1)], 1)
        local = self.proj(self.body(x)).permute(0, 2, 3, 1)
        return ImageFeatures(local, local.mean(dim=(1, 2)))


class TextEncoder(nn.Module):
    """Small Transformer over word ids; masked mean pooling to one vector per sequence.

    Args:
        vocab_size: tokenizer size (id 0 is padding).
        dim: model width and output size.
        layers: Transformer layers.
        heads: attention heads.
        max_len: longest sequence (learned positions).
        dropout: dropout in the Transformer layers.

    Example:
        >>> enc = TextEncoder(20, dim=16, layers=1, heads=2, max_len=8)
        >>> ids = torch.tensor([[3, 4, 5, 0], [6, 0, 0, 0]])
        >>> enc(ids).shape, enc.encode_sentences(ids[None]).shape
        (torch.Size([2, 16]), torch.Size([1, 2, 16]))
    """

    def __init__(self, vocab_size: int, *, dim: int = 64, layers: int = 2, heads: int = 4,
                 max_len: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        self.max_len, self.dim = max_len, dim
        self.embed = nn.Embedding(vocab_size, dim, padding_idx=0)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: Tensor) -> Tensor:
        """``ids (N, L)`` (0 = padding) -> ``(N, dim)``; an all-padding row gives zeros."""
        if ids.dim() != 2 or ids.shape[1] > self.max_len:
            raise ValueError(
                f"ids: expected shape (N, L) with L <= {self.max_len}, got {tuple(ids.shape)}"
            )
        valid = ids != 0
        # An all-padding row would make attention softmax over nothing; attend to slot 0.
        keep = valid.clone()
        keep[:, 0] = True
        h = self.embed(ids) + self.pos[: ids.shape[1]]
        h = self.encoder(h, src_key_padding_mask=~keep)
        h = self.norm(h)
        w = valid.to(h.dtype)[..., None]
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)

    def encode_sentences(self, ids: Tensor) -> Tensor:
        """``ids (B, S, L)`` -> ``(B, S, dim)``, one vector per sentence."""
        b, s, l_ = ids.shape
        return self(ids.reshape(b * s, l_)).reshape(b, s, -1)
