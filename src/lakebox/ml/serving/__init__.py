"""Online scoring: every registered model of lakebox's own registry behind MLflow's scoring
protocol (`lakebox ml serve`).

`inputs` turns a request body into an Arrow table of the columns a version was trained on
(or a 400 saying what was expected), `catalog` keeps each model's aliased versions loaded
and swaps them when an alias moves, `app` is the Starlette app, `server` binds it (a token
off loopback). Scoring itself is `lakebox.ml.predict.score_features`, the batch path's.
"""
