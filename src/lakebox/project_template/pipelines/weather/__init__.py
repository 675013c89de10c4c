"""weather: hourly readings from a JSON API -> raw lake -> gate -> raw.weather_readings ->
stg_weather_readings -> weather_daily -> snapshot. A template: copy the folder to start
another pipeline (its folder name is its name)."""

from lakebox.pipelines.spec import SNAPSHOT, TRANSFORM, PipelineSpec, Setting, StageSpec
from lakebox.setting_kinds import Url

SPEC = PipelineSpec(
    name="weather",
    description="hourly weather readings: daily temperature per station",
    stages=(StageSpec("fetch", ".pipeline:fetch"), StageSpec("load", ".pipeline:load"), TRANSFORM, SNAPSHOT),
    settings=(Setting("api_url", None, "the readings API; unset: the sample readings, served on 127.0.0.1",
                      kind=Url()),),
    dbt_selector="path:models/weather",  # its models/ folder
    marts=("analytics.weather_daily",),
    sources=("weather",),  # the ledger source its fetch lands under
)
