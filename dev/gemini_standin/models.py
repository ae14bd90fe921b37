"""The model ids the real Developer API serves now, and their Model resources
(``GEMINI_WIRE.md``, "Current model ids")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .common import GENERATE, JSON

TEXT_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
IMAGE_METHODS = ("generateContent", "countTokens", "batchGenerateContent")


@dataclass(frozen=True)
class ServedModel:
    """One model id the API serves, and what its Model resource says."""

    model_id: str
    display_name: str
    description: str
    image_output: bool = False
    input_token_limit: int = 1_048_576
    output_token_limit: int = 65_536
    thinking: bool = True
    version: str = "001"

    def resource(self) -> JSON:
        """The Model resource as ``GET /{ver}/models/{id}`` answers it."""
        return {
            "name": f"models/{self.model_id}",
            "baseModelId": self.model_id,
            "version": self.version,
            "displayName": self.display_name,
            "description": self.description,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(
                IMAGE_METHODS if self.image_output else TEXT_METHODS
            ),
            "temperature": 1.0,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2.0,
            "thinking": self.thinking,
        }


def _text_model(model_id: str, name: str, version: str = "001") -> ServedModel:
    return ServedModel(
        model_id, name, f"{name}, as served by the Gemini stand-in.", version=version
    )


def _image_model(model_id: str, name: str, note: str = "") -> ServedModel:
    description = f"{name} (image output), as served by the Gemini stand-in.{note}"
    return ServedModel(model_id, name, description, True, 65_536, 32_768)


# Ids the real API serves now, in its listing order (../shared/GEMINI_WIRE.md, "Current
# model ids"). Retired ids (gemini-2.0-*, gemini-2.5-*, *-image-preview, the shut-down
# gemini-3.1-flash-image) and the never-served gemini-3.1-flash are absent on purpose:
# asking for them answers 404, as the real API does.
SERVED_MODELS: dict[str, ServedModel] = {
    model.model_id: model
    for model in (
        _text_model("gemini-3.8-flash", "Gemini 3.8 Flash"),
        _text_model("gemini-3.7-flash", "Gemini 3.7 Flash"),
        _text_model("gemini-3.6-flash", "Gemini 3.6 Flash"),
        _text_model("gemini-3.5-flash", "Gemini 3.5 Flash"),
        _text_model("gemini-3.5-flash-lite", "Gemini 3.5 Flash-Lite"),
        _text_model("gemini-3.1-flash-lite", "Gemini 3.1 Flash-Lite"),
        _text_model("gemini-3.1-pro-preview", "Gemini 3.1 Pro Preview", "3.1-pro-preview"),
        _image_model("gemini-nano-banana-2.1", "Nano Banana 2.1"),
        _image_model("gemini-3-pro-image", "Nano Banana Pro"),
        _image_model("gemini-3.1-flash-lite-image", "Nano Banana 2 Lite"),
    )
}
# Deprecated on the Developer API, its requests answered by the newer model (the answer's
# modelVersion says which); Vertex AI still serves it as itself.
ROUTED_MODELS = {"gemini-3.7-flash": "gemini-3.8-flash"}
MODEL_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")


def extra_model(model_id: str) -> ServedModel:
    """A test-only id from config ``extra_models``: image output if its id says image/banana."""
    if "image" in model_id or "banana" in model_id:
        return _image_model(model_id, f"Extra stand-in model {model_id}")
    return _text_model(model_id, f"Extra stand-in model {model_id}")


def model_not_found(model_id: str, api_version: str, method: str = GENERATE) -> str:
    """The real 404 message for an id that is not served (or was retired)."""
    return (
        f"models/{model_id} is not found for API version {api_version}, or is not supported "
        f"for {method}. Call ListModels to see the list of available models and their "
        "supported methods."
    )
