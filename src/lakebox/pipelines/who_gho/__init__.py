"""The who_gho pipeline: WHO Global Health Observatory life expectancy, from the GHO OData
API (or its bundled stand-in) to marts, lag features and regression models. See docs/who_gho.md."""
