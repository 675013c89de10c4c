"""Contracts declared once per source, and their vectorized checks."""

from lakebox.quality.checks import check_relation, failed, typed_select
from lakebox.quality.contract import Column, Contract

__all__ = ["Column", "Contract", "check_relation", "failed", "typed_select"]
