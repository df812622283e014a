"""The control-plane JSON API (``/api/...``)."""

from tollway.api.app import build_control_app
from tollway.api.deps import ControlDeps

__all__ = ["ControlDeps", "build_control_app"]
