"""The `news-monitor` command line: daemon, checks, state, database, receiver, evaluation."""
