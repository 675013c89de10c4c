"""Drift on the real commit features: an unshifted sample is not flagged, an injected
shift is, and the report lands in ml.drift_report."""

from __future__ import annotations

import datetime as dt

import pytest

from lakebox.ml import drift
from lakebox.ml.drift import compare, psi
from lakebox.pipelines.github_commits.classifier import SPEC

SHIFT = ("select * replace (message_length * 4 as message_length, (hour + 12) % 24 as hour, "
         "'upgrade kubernetes helm chart values for ' || message_body as message_body) from ({q}) as s")


def _sample(warehouse, keep: str, shifted: bool = False):
    """Rows of the classifier's input picked by a hash of the sha: a sample drawn the same
    way as its reference, so any drift in it is injected."""
    query = f"select * from ({SPEC.source_sql}) as src where {keep}"
    return warehouse.query_arrow(SHIFT.format(q=query) if shifted else query)


def test_an_unshifted_sample_is_not_flagged(commit_warehouse) -> None:
    reference = _sample(commit_warehouse, "hash(sha) % 5 <> 0")
    current = _sample(commit_warehouse, "hash(sha) % 5 = 0")
    assert 500 < current.num_rows < 900

    found = compare(reference, current, SPEC.drift_columns, SPEC.text_features)

    assert [f.feature for f in found if f.drifted] == []
    assert {f.method for f in found} == {"ks", "psi"} and len(found) == len(SPEC.drift_columns) + 1


def test_an_injected_shift_is_flagged(commit_warehouse) -> None:
    reference = _sample(commit_warehouse, "hash(sha) % 5 <> 0")
    current = _sample(commit_warehouse, "hash(sha) % 5 = 0", shifted=True)

    found = {f.feature: f for f in compare(reference, current, SPEC.drift_columns, SPEC.text_features)}

    assert {name for name, f in found.items() if f.drifted} == {"message_length", "hour", "message_body (first word)"}
    assert found["hour"].method == "ks" and found["hour"].p_value < 0.01
    assert found["message_body (first word)"].method == "psi" and found["message_body (first word)"].statistic > 0.2
    assert found["message_body (tokens)"].statistic > 0


def test_drift_compares_the_newest_window_and_writes_the_report(settings, commit_warehouse) -> None:
    wh = commit_warehouse
    newest = wh.query("select max(committed_at) from ml.commit_features")[0][0]
    wh.execute("update ml.commit_features set message_length = message_length * 4, hour = (hour + 12) % 24 "
               "where committed_at > ?", [newest - dt.timedelta(days=30)])

    result = drift(settings, wh, SPEC)

    assert result.drifted and {"message_length", "hour"} <= set(result.drifted_features)
    assert result.window_end == newest and result.window_start <= newest - dt.timedelta(days=1)
    rows = wh.query("select feature, method, statistic, p_value, threshold, drifted, window_start, window_end "
                    "from ml.drift_report where model_name = 'commit-classifier' order by feature")
    assert len(rows) == len(SPEC.drift_columns) + 1  # the text column twice: tokens, first word
    by_feature = {r[0]: r for r in rows}
    assert by_feature["message_length"][1:2] == ("ks",) and by_feature["message_length"][5] is True
    assert by_feature["repo"][1] == "psi" and by_feature["repo"][3] is None and by_feature["repo"][5] is False
    assert all(r[7] == newest for r in rows)


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift() -> None:
    assert psi([50, 30, 20], [500, 300, 200]) == pytest.approx(0.0, abs=1e-9)
    assert 0 < psi([50, 30, 20], [45, 35, 20]) < psi([50, 30, 20], [20, 30, 50])
