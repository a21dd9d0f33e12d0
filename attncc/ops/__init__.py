"""The op registry: every op the language knows, one class each, one family per module."""

from attncc.ops import (  # noqa: F401 - importing a family module registers its ops
    activation,
    adaptive,
    arith,
    attend,
    broadcast,
    const,
    contract,
    covariance,
    dynconv,
    grad,
    index,
    layout,
    linear,
    norm,
    pool,
    reduce,
    resample,
    reshape,
    sample,
    select,
    slicing,
    softmax,
    split,
    topk,
    unfold,
)
from attncc.ops.base import Op, all_ops, get_op, has_op, register, user_ops

__all__ = ["Op", "all_ops", "get_op", "has_op", "register", "user_ops"]
