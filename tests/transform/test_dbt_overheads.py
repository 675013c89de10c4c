"""dbt's per-command overheads that lakebox trims keep dbt's behaviour."""

from __future__ import annotations

import inspect

from dbt_common import behavior_flags

from lakebox.transform.dbt import _cheap_behavior_flag_source


def _upstream_source() -> str:
    """What dbt's own `_default_source` answers: the first module on the stack that is not
    behavior_flags (it walks inspect.stack(), reading every frame's source file)."""
    for frame in inspect.stack():
        module = inspect.getmodule(frame[0])
        if module and module.__name__ != behavior_flags.__name__:
            return module.__name__
    return "Unknown"


def _flag_made_here() -> behavior_flags.BehaviorFlagRendered:
    return behavior_flags.BehaviorFlagRendered({"name": "lakebox_test_flag", "default": False,
                                                "description": "a flag"}, {})


def test_a_behaviour_flag_is_still_named_after_the_module_that_made_it() -> None:
    _cheap_behavior_flag_source()
    _cheap_behavior_flag_source()  # installing twice is harmless
    assert _flag_made_here()._behavior_change_event.flag_source == _upstream_source() == __name__


def test_a_flag_with_its_own_source_keeps_it() -> None:
    _cheap_behavior_flag_source()
    flag = behavior_flags.BehaviorFlagRendered(
        {"name": "lakebox_test_flag", "default": True, "description": "d", "source": "dbt-duckdb"}, {})
    assert flag._behavior_change_event.flag_source == "dbt-duckdb"
