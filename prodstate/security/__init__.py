"""Where secrets come from (a private file or the environment) and the TLS files."""
