"""The decisions, pure: records, the decision function, parent choice, the tree view.

Standard library only (a test holds it to that): everything here is computed from
values, never read from ZooKeeper or Redis, so it is tested without servers.
"""
