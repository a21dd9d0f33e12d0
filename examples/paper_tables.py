"""Parameters and GMACs of ResNet-50 and MobileNetV2 with attention blocks, beside the papers.

Each channel or channel-and-spatial spec goes into the backbone at its paper's placement
(`attncc.nets`), and `attncc.count` gives its parameters and multiply-accumulates at
224 × 224, batch 1. The papers' own figures are printed beside them.

    python examples/paper_tables.py              # the table (plain text)
    python examples/paper_tables.py --markdown   # the README's table

Where the figures come from: the survey's text (/work/shared/survey.txt when this was
written) has no parameter or FLOP tables, so every paper figure below is quoted FROM MEMORY of
the cited paper and table; a figure not remembered with confidence is left out ("—"). Each row
says which table it comes from.

Counting conventions, and why a paper's number can differ from ours:
- Our GMACs are convolution, linear and contraction multiply-accumulates (= FLOPs / 2 as
  torch.utils.flop_counter counts them); the papers' "GFLOPs" for ResNets are this same
  quantity (ResNet-50: 3.86 G in He et al.'s Caffe layout, about 4.1 G in torchvision's).
- Layout: SENet, CBAM, BAM, ECA and SRM count on the original ResNet-50 with the stride of a
  downsampling bottleneck in its first 1×1 conv (3.858 GMACs); FcaNet, triplet attention and
  SimAM count on torchvision's (stride in the 3×3 conv, 4.089 GMACs). Each row is computed on
  the layout its paper used (column "layout": 1x1 or 3x3).
- A paper that also counts the blocks' elementwise work (sigmoids, pooling, the gating
  product) reports a bit more than the MACs: column "+other" adds attncc's count of the
  blocks' non-MAC FLOPs, e.g. SE-ResNet-50: 3.861 + 0.011 = 3.872, SENet's 3.87.
- The ECA paper reports its ResNet-50 baseline as 24.37M parameters (torchvision's is 25.56M):
  its counter left some layers out; the added parameters agree (80 in the paper, with k = 5 in
  every block; 86 here, since the adaptive k of the paper's eq. is 7 at C = 2048).
- GCT here sits before every conv, the stem's and the downsampling convs' included (the
  GCT spec's placement); the paper's count is not quoted.
- Coordinate attention's MobileNetV2 table (Hou et al., CVPR 2021) counts MAdds at 224 × 224;
  its SE and CBAM rows put those blocks after the depthwise conv too, as rows `se@dw` and
  `cbam@dw` do here. The reduction ratio of those rows is our inference, not a quote: r = 24
  reproduces their 3.89M (r = 16 would give 4.08M).
- Table numbers are quoted from memory as well as the figures.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import attncc
from attncc import nets


@dataclass(frozen=True)
class Row:
    """One network to count, and what its paper reports (None: not quoted)."""

    net: str  # resnet50 | mobilenet_v2
    spec: str | None
    paper_params_m: float | None
    paper_gflops: float | None
    source: str
    layout: str = "1x1"  # ResNet: where the stride is (1x1: original, 3x3: torchvision)
    placement: str | None = None  # None: the paper's (attncc.nets)
    args: tuple[tuple[str, object], ...] = ()


ROWS = [
    Row("resnet50", None, 25.56, 3.858, "CBAM (Woo et al., ECCV 2018), Table 4"),
    Row("resnet50", "se", 28.09, 3.87, "SENet (Hu et al., CVPR 2018), Table 2"),
    Row("resnet50", "eca", 24.37, 3.86, "ECA-Net (Wang et al., CVPR 2020), Table 2"),
    Row("resnet50", "srm", 25.62, None, "SRM (Lee et al., ICCV 2019), Table 1"),
    Row("resnet50", "gct", None, None, "GCT (Yang et al., CVPR 2020): not quoted"),
    Row("resnet50", "genet", None, None, "GE (Hu et al., NeurIPS 2018): not quoted"),
    Row("resnet50", "cbam", 28.09, 3.864, "CBAM (Woo et al., ECCV 2018), Table 4"),
    Row("resnet50", "bam", 25.92, 3.94, "BAM (Park et al., BMVC 2018), ImageNet table"),
    Row("resnet50", None, 25.56, 4.12, "FcaNet (Qin et al., ICCV 2021), Table 3", "3x3"),
    Row("resnet50", "fcanet", 28.07, 4.13, "FcaNet (Qin et al., ICCV 2021), Table 3", "3x3"),
    Row("resnet50", "triplet", 25.56, 4.17, "Triplet (Misra et al., WACV 2021), Table 1",
        "3x3"),
    Row("resnet50", "simam", 25.56, None, "SimAM (Yang et al., ICML 2021), Table 1", "3x3"),
    Row("mobilenet_v2", None, 3.50, 0.300, "CA (Hou et al., CVPR 2021), Table 2"),
    Row("mobilenet_v2", "se", 3.89, 0.300, "CA (Hou et al., CVPR 2021), Table 2",
        placement="dw", args=(("r", 24),)),
    Row("mobilenet_v2", "cbam", 3.89, 0.300, "CA (Hou et al., CVPR 2021), Table 2",
        placement="dw", args=(("r", 24),)),
    Row("mobilenet_v2", "coordatt", 3.95, 0.310, "CA (Hou et al., CVPR 2021), Table 2"),
]


@dataclass(frozen=True)
class Result:
    row: Row
    params: int
    macs: int
    other_attention: int  # the blocks' non-MAC FLOPs


def measure(row: Row, size: int = 224) -> Result:
    """Build the network of one row and count it at size × size, batch 1."""
    kw: dict = {"input_size": size}
    if row.spec is not None:
        kw.update(attention=row.spec, attention_args=dict(row.args), placement=row.placement)
    if row.net.startswith("resnet"):
        kw["stride_in_1x1"] = row.layout == "1x1"
    model = nets.NETS[row.net](**kw)
    c = attncc.count(model, (1, 3, size, size))
    return Result(row, c.params, c.macs, c.attention().other)


def label(row: Row) -> str:
    name = {"resnet50": "ResNet-50", "mobilenet_v2": "MobileNetV2"}[row.net]
    spec = "" if row.spec is None else f" + {row.spec}" + (
        f"@{row.placement}" if row.placement else "") + "".join(
        f" {k}={v}" for k, v in row.args)
    return name + spec


def fmt(r: Result) -> list[str]:
    row = r.row
    paper_p = "—" if row.paper_params_m is None else f"{row.paper_params_m:.2f}"
    paper_f = "—" if row.paper_gflops is None else f"{row.paper_gflops:g}"
    layout = row.layout if row.net.startswith("resnet") else ""
    return [label(row), layout, f"{r.params / 1e6:.2f}", f"{r.macs / 1e9:.3f}",
            f"{(r.macs + r.other_attention) / 1e9:.3f}", paper_p, paper_f, row.source]


HEAD = ["network", "layout", "params (M)", "GMACs", "+other", "paper params (M)",
        "paper GFLOPs", "paper figures (from memory)"]


def table(results: list[Result], markdown: bool = False) -> str:
    rows = [fmt(r) for r in results]
    if markdown:
        lines = ["| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(x[i]) for x in [HEAD, *rows]) for i in range(len(HEAD))]
    return "\n".join("  ".join(c.ljust(w) if i in (0, 1, 7) else c.rjust(w)
                               for i, (c, w) in enumerate(zip(x, widths, strict=True))).rstrip()
                     for x in [HEAD, *rows])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = p.parse_args(argv)
    results = [measure(row) for row in ROWS]
    print(table(results, markdown=args.markdown))
    if not args.markdown:
        print("\nGMACs: conv/linear/contraction multiply-accumulates at 224x224, batch 1 "
              "(= FLOPs / 2 as torch.utils.flop_counter counts);\n+other: plus the attention "
              "blocks' elementwise FLOPs; layout: the ResNet's stride in the 1x1 (original) "
              "or 3x3 (torchvision) conv.\nPaper figures are quoted from memory of the cited "
              "tables (the survey text has none); see this file's docstring for each "
              "convention.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
