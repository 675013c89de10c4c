"""Declarative pipelines: a folder with `pipeline.toml` and SQL models, no Python.

The TOML is parsed into the same objects a coded pipeline declares (a PipelineSpec, a
RestSource, a Contract, MLModelSpecs), so there is one engine, configured two ways.
"""
