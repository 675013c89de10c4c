"""Contracts declared once per source, their vectorized checks, and the one gate engine."""

from lakebox.quality.checks import check_relation, typed_select
from lakebox.quality.contract import Column, Contract
from lakebox.quality.gate import Checked, CheckResult, GateSource, failed, quarantine, run_gate

__all__ = ["CheckResult", "Checked", "Column", "Contract", "GateSource", "check_relation", "failed", "quarantine",
           "run_gate", "typed_select"]
