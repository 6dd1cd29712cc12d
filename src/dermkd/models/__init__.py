"""Models: one registry (`create_model`) for the DSC student and the timm teachers."""

from dermkd.models.registry import MODELS, create_model

__all__ = ["MODELS", "create_model"]
