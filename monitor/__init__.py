"""news-monitor: watch folders of dated articles, match YAML rules, deliver signed webhooks."""

__version__ = "0.1.0"
