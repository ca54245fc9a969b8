"""Everything that touches ZooKeeper: the layout of prodstate's znodes, the agent's store
and its read cache, the clients' root watch, and the ACLs."""
