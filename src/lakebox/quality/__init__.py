"""Contracts declared once per source, their vectorized checks, and the one gate to quarantine."""

from lakebox.quality.checks import check_relation, typed_select
from lakebox.quality.contract import Column, Contract
from lakebox.quality.gate import CheckResult, failed, quarantine

__all__ = ["CheckResult", "Column", "Contract", "check_relation", "failed", "quarantine", "typed_select"]
