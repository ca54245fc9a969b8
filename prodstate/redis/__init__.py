"""Everything that touches Redis: reading and changing one Redis's replication, and the
users the agent keeps on it."""
