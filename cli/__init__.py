"""Command-line tools for Tinkerbell users (``cli.tinkerbell``) and the demo."""
