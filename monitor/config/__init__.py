"""Configuration: settings, rules files, YAML with line numbers, durations, logging, redaction."""
