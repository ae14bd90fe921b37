"""Tinkerbell's domain: models, settings and the adapters to Google Cloud and Gemini.

Modules are split by concern and import their heavy dependencies lazily, so that
each Cloud Function pays at cold start only for the clients it really uses.
"""
