"""Matching: rules compiled into one engine; an article's text folded once, presearched, decided per rule."""
