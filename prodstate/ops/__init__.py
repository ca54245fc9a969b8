"""Operations: reading the live tree for ``prodstate status`` and the heartbeat for
``prodstate check``."""
