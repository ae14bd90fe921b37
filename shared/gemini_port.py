"""The worker's Gemini, as one port (``shared.ports.Gemini``): the strategy and image
calls, and PDFs through the File API."""

from __future__ import annotations

from shared.gemini import generate_image, generate_strategy
from shared.gemini_files import pdf_for_gemini

__all__ = ["generate_image", "generate_strategy", "pdf_for_gemini"]
