"""Delivery: render a payload for the webhook's format, sign it, POST it, and store the outcome."""
