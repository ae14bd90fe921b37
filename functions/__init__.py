"""Thin Cloud Functions adapters: parse the trigger, call ``shared``, map errors."""
