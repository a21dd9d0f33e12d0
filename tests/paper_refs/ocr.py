"""Object-contextual representations (OCR) reference.

Paper: Yuan, Chen, Wang, "Object-Contextual Representations for Semantic Segmentation",
ECCV 2020. Survey: Guo et al., section 3.2.7 (prose, no equation).
Authors' code: HRNet/HRNet-Semantic-Segmentation ``lib/models/seg_hrnet_ocr.py``
(SpatialGather_Module, _ObjectAttentionBlock, SpatialOCR_Module; ``ModuleHelper.BNReLU`` is
Sequential(BatchNorm2d, ReLU)), transcribed with scale = 1, bn_type None and
out_channels = in_channels, called as ``ocr_distri_head(feats, gather_head(feats, regions))``.

Dropout2d is kept (the code's p = 0.05); the tests compare in eval mode, where it is the
identity, and in train mode with p = 0 (the compiled block has no dropout).

The compiled block holds the 1x1 convs of the [N, C, K, 1] region tensor as dense maps and
numbers each BN and ReLU as siblings in one seq; ``from_compiled`` renames (f_pixel.1 ->
f_pixel.1.0, f_pixel.3 -> f_pixel.2, f_pixel.4 -> f_pixel.3.0, ...) and adds unit dims.
"""

import re

import torch
import torch.nn.functional as F  # noqa: N812 - the usual alias
from torch import Tensor, nn


def BNReLU(num_features: int) -> nn.Sequential:  # noqa: N802 - the code's name
    return nn.Sequential(nn.BatchNorm2d(num_features), nn.ReLU())


class SpatialGather_Module(nn.Module):  # noqa: N801 - the code's name
    def __init__(self, cls_num: int = 0, scale: int = 1) -> None:
        super().__init__()
        self.cls_num = cls_num
        self.scale = scale

    def forward(self, feats: Tensor, probs: Tensor) -> Tensor:
        batch_size, c = probs.size(0), probs.size(1)
        probs = probs.view(batch_size, c, -1)
        feats = feats.view(batch_size, feats.size(1), -1)
        feats = feats.permute(0, 2, 1)                                      # batch x hw x c
        probs = F.softmax(self.scale * probs, dim=2)                        # batch x k x hw
        return torch.matmul(probs, feats).permute(0, 2, 1).unsqueeze(3)    # batch x c x k x 1


class _ObjectAttentionBlock(nn.Module):
    def __init__(self, in_channels: int, key_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.key_channels = key_channels
        self.f_pixel = nn.Sequential(
            nn.Conv2d(in_channels, key_channels, kernel_size=1, stride=1, padding=0, bias=False),
            BNReLU(key_channels),
            nn.Conv2d(key_channels, key_channels, kernel_size=1, stride=1, padding=0, bias=False),
            BNReLU(key_channels),
        )
        self.f_object = nn.Sequential(
            nn.Conv2d(in_channels, key_channels, kernel_size=1, stride=1, padding=0, bias=False),
            BNReLU(key_channels),
            nn.Conv2d(key_channels, key_channels, kernel_size=1, stride=1, padding=0, bias=False),
            BNReLU(key_channels),
        )
        self.f_down = nn.Sequential(
            nn.Conv2d(in_channels, key_channels, kernel_size=1, stride=1, padding=0, bias=False),
            BNReLU(key_channels),
        )
        self.f_up = nn.Sequential(
            nn.Conv2d(key_channels, in_channels, kernel_size=1, stride=1, padding=0, bias=False),
            BNReLU(in_channels),
        )

    def forward(self, x: Tensor, proxy: Tensor) -> Tensor:
        batch_size = x.size(0)
        query = self.f_pixel(x).view(batch_size, self.key_channels, -1)
        query = query.permute(0, 2, 1)
        key = self.f_object(proxy).view(batch_size, self.key_channels, -1)
        value = self.f_down(proxy).view(batch_size, self.key_channels, -1)
        value = value.permute(0, 2, 1)
        sim_map = torch.matmul(query, key)
        sim_map = (self.key_channels ** -.5) * sim_map
        sim_map = F.softmax(sim_map, dim=-1)
        context = torch.matmul(sim_map, value)
        context = context.permute(0, 2, 1).contiguous()
        context = context.view(batch_size, self.key_channels, *x.size()[2:])
        return self.f_up(context)


class SpatialOCR_Module(nn.Module):  # noqa: N801 - the code's name
    def __init__(self, in_channels: int, key_channels: int, out_channels: int,
                 dropout: float = 0.05) -> None:
        super().__init__()
        self.object_context_block = _ObjectAttentionBlock(in_channels, key_channels)
        self.conv_bn_dropout = nn.Sequential(
            nn.Conv2d(2 * in_channels, out_channels, kernel_size=1, padding=0, bias=False),
            BNReLU(out_channels),
            nn.Dropout2d(dropout),
        )

    def forward(self, feats: Tensor, proxy_feats: Tensor) -> Tensor:
        context = self.object_context_block(feats, proxy_feats)
        return self.conv_bn_dropout(torch.cat([context, feats], 1))


class OCRReference(nn.Module):
    """The gather head and the distribution head, as HighResolutionNet.forward chains them."""

    def __init__(self, C: int, key: int = 256, dropout: float = 0.05) -> None:
        super().__init__()
        self.ocr_gather_head = SpatialGather_Module()
        self.ocr_distri_head = SpatialOCR_Module(C, key, C, dropout=dropout)

    def forward(self, feats: Tensor, out_aux: Tensor) -> Tensor:
        context = self.ocr_gather_head(feats, out_aux)
        return self.ocr_distri_head(feats, context)


# compiled seq index -> the code's (BNReLU nests BN one level down; ReLU has no state)
_RENAME = {
    "f_pixel": {"0": "0", "1": "1.0", "3": "2", "4": "3.0"},
    "f_object": {"0": "0", "1": "1.0", "3": "2", "4": "3.0"},
    "f_down": {"0": "0", "1": "1.0"},
    "f_up": {"0": "0", "1": "1.0"},
}


def from_compiled(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The compiled OCR block's state_dict with the code's names and conv shapes."""
    out = {}
    for k, v in state.items():
        m = re.fullmatch(r"object_context_block\.(\w+)\.(\d)\.(\w+)", k)
        if m:
            seq, idx, leaf = m.groups()
            dense = seq in ("f_object", "f_down") and idx in ("0", "3")
            key = f"ocr_distri_head.object_context_block.{seq}.{_RENAME[seq][idx]}.{leaf}"
            out[key] = v[..., None, None] if dense else v      # dense [D, C] -> 1x1 conv
            continue
        m = re.fullmatch(r"conv_bn_dropout\.(\d)\.(\w+)", k)
        assert m, k
        idx, leaf = m.groups()
        out[f"ocr_distri_head.conv_bn_dropout.{ {'0': '0', '1': '1.0'}[idx] }.{leaf}"] = v
    return out
