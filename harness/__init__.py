"""harness: reproduce Selective Kernel Networks (CVPR 2019) against SENet and ResNeXt."""

from harness.errors import HarnessError
from harness.registry import create_model, list_models, register_model

__all__ = ["HarnessError", "create_model", "list_models", "register_model"]
__version__ = "0.1.0"
