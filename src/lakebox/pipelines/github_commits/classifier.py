"""The commit classifier: a commit's conventional type (feat, fix, docs, chore, ...) from
what remains once the `type(scope)!:` prefix is removed.

It reads `ml.commit_features` (built by the github_commits dbt project). Types outside
`TYPES` fold into `other`. The author's history is taken strictly from earlier commits
(window frames end one row before the commit), so no label leaks into its own features.
Two candidates, picked by macro F1 on the newest commits: a RandomForest (as the seed
platform had) and a logistic regression (log-loss SGD: lbfgs took 16-20 s here on the
same input) on TF-IDF of the text (`DuckDBTfidf`: counted in DuckDB, not per text in
Python) beside the other features.
"""

from __future__ import annotations

from typing import Any

from lakebox.ml.spec import MLModelSpec
from lakebox.pipelines.github_commits.online import raw_inputs

TYPES = ("feat", "fix", "docs", "chore", "refactor", "test", "build", "ci")
HISTORY_TYPES = ("fix", "feat", "chore", "docs")
NUMERIC = ("hour", "weekday", "message_length", "parent_count", "author_prior_commits",
           *(f"author_prior_{t}_share" for t in HISTORY_TYPES))
CATEGORICAL = ("repo", "is_merge")
TEXT = "message_body"


def _source_sql() -> str:
    kept = ", ".join(f"'{t}'" for t in TYPES)
    shares = ",\n       ".join(
        f"coalesce(cast(sum(case when lower(label) = '{t}' then 1 else 0 end) over prior as double precision)"
        f" / nullif(count(label) over prior, 0), 0.0) as author_prior_{t}_share"
        for t in HISTORY_TYPES
    )
    return f"""
select sha, repo, author_key, committed_at, hour, weekday, coalesce(message_body, '') as message_body,
       message_length, is_merge, parent_count, author_prior_commits,
       {shares},
       case when lower(label) in ({kept}) then lower(label) when label is not null then 'other' end as label
from ml.commit_features
window prior as (partition by author_key order by committed_at, sha rows between unbounded preceding and 1 preceding)"""


def candidates() -> dict[str, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import SGDClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from lakebox.pipelines.github_commits.text import DuckDBTfidf

    def features(max_text: int, scale: bool) -> ColumnTransformer:
        return ColumnTransformer([
            ("text", DuckDBTfidf(max_features=max_text, min_df=2), TEXT),
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
            ("num", StandardScaler() if scale else "passthrough", list(NUMERIC)),
        ])

    return {
        "random_forest": Pipeline([
            ("features", features(2000, scale=False)),
            ("model", RandomForestClassifier(n_estimators=60, min_samples_leaf=2, class_weight="balanced_subsample",
                                             random_state=0, n_jobs=-1)),
        ]),
        "logistic_regression": Pipeline([
            ("features", features(20000, scale=True)),
            ("model", SGDClassifier(loss="log_loss", alpha=3e-4, class_weight="balanced", random_state=0)),
        ]),
    }


SPEC = MLModelSpec(
    name="commit-classifier",
    pipeline="github_commits",
    task="classification",
    source_sql=_source_sql(),
    key_columns=("sha",),
    time_column="committed_at",
    label_column="label",
    features=(TEXT, *CATEGORICAL, *NUMERIC),
    candidates=candidates,
    predictions_table="ml.commit_predictions",
    predicted_column="predicted_type",
    metric="f1_macro",
    margin=0.01,
    experiment="commit-classifier",
    text_features=(TEXT,),
    # author_prior_commits only grows with time, so it would always "drift"
    drift_features=tuple(f for f in (TEXT, *CATEGORICAL, *NUMERIC) if f != "author_prior_commits"),
    skops_trusted_types=("lakebox.pipelines.github_commits.text.DuckDBTfidf",),
    min_labelled=200,
    required_tables=("ml.commit_features",),
    # online: a commit as staging.stg_commits has it (online.py), its author's history looked up
    raw_inputs=raw_inputs(_source_sql(), HISTORY_TYPES),
)
