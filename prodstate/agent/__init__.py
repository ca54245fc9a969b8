"""The agent beside each Redis: its loop (snapshot, decide, act), configuration,
back-off, metrics and logs."""
