"""lakebox: a local-first data & ML platform.

The public face is small on purpose; everything else lives in the packages that follow
the data's journey (lake, warehouse, quality, transform, pipelines).
"""

from lakebox.errors import LakeboxError
from lakebox.pipelines import discover as _discover_pipelines
from lakebox.settings import Settings, declare_pipelines

declare_pipelines(_discover_pipelines)  # settings learn each pipeline's declared settings

__version__ = "0.1.0"
__all__ = ["LakeboxError", "Settings", "__version__"]
