"""``prodstate render`` and ``prodstate watch``: the local Redis's data handed to programs
that never speak Redis, as files rendered from Jinja2 templates (with a command run after a
change) and as a blocking wait for a change, for scripts."""
