"""The op registry: every op the language knows, one class each, one family per module."""

from attncc.ops import activation, arith, layout, linear, norm, reduce  # noqa: F401 - registers
from attncc.ops.base import Op, all_ops, get_op, has_op, register, user_ops

__all__ = ["Op", "all_ops", "get_op", "has_op", "register", "user_ops"]
