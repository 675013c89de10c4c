"""who_gho: WHO Global Health Observatory life expectancy, from the GHO OData API (or its
bundled stand-in) → raw lake → raw.who_countries, raw.who_observations → stg_who_observations
→ life-expectancy marts and lag features → the life-expectancy model (predict, train,
drift) in the shared ML lifecycle. See docs/who_gho.md."""

from __future__ import annotations

from lakebox.core_settings import GATE_POLICY
from lakebox.pipelines.spec import TRANSFORM, Command, DashboardPage, PipelineSpec, Setting, StageSpec
from lakebox.setting_kinds import Items, Url, Whole

SPEC = PipelineSpec(
    name="who_gho",
    description="WHO GHO life expectancy: country-year marts, sex gap, trends, lag features",
    stages=(
        StageSpec("fetch", ".pipeline:fetch"),
        StageSpec("load", ".pipeline:load"),
        TRANSFORM,
        StageSpec("predict", ".pipeline:predict"),
        StageSpec("train", ".pipeline:train"),
        StageSpec("drift", ".pipeline:drift"),
    ),
    settings=(
        Setting("api_url", "https://ghoapi.azureedge.net/api", "the GHO OData API's root; `lakebox demo` points it "
                "at the bundled stand-in (`lakebox who-api`)", env="LAKEBOX_WHO_API_URL", kind=Url()),
        Setting("indicators", "WHOSIS_000001,WHOSIS_000002", "GHO indicator codes, comma-separated "
                "(life expectancy and healthy life expectancy at birth)", env="LAKEBOX_WHO_INDICATORS",
                kind=Items(r"[A-Za-z][A-Za-z0-9_]*", "GHO indicator codes",
                           "a letter, then letters, digits and _, e.g. WHOSIS_000001")),
        Setting("page_size", "5000", "records asked for per request (`$top`)", env="LAKEBOX_WHO_PAGE_SIZE",
                kind=Whole(1)),
        Setting("policy", "quarantine", "`quarantine`: quarantine a page that fails its gate, load the good ones; "
                "`fail-fast`: stop at the first bad page and leave the rest pending", kind=GATE_POLICY),
    ),
    dbt_selector="path:models/who_gho",
    marts=("analytics.life_expectancy_by_country_year", "analytics.life_expectancy_sex_gap",
           "analytics.life_expectancy_trends", "ml.life_expectancy_features"),
    sources=("who_gho", "who_gho_countries"),
    dashboard_page=DashboardPage(".page", "WHO", ":material/public:"),
    commands=(Command("who-api", ".commands:who_api"),),
    demo_feed=".demo:bundled_api",
    waiting_input=None,  # polled: `lakebox watch` runs it every --every seconds
    ml_models=(".model:SPEC",),
    bench=".bench:SCENARIO",
)
