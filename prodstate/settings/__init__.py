"""Settings: configuration kept in the dataset, by namespace (a service or a kind of
service), each value checked against its namespace's JSON Schema, every change recorded
with who, when, where and why, and any key rolled back to an earlier version.

``keys`` names the keys and bounds; ``documents`` reads JSON within those bounds;
``records`` parses what Redis holds (the client's read path imports only it);
``changes`` builds a change's fenced write; ``history`` answers rollback and diff;
``schema`` checks schemas and values (jsonschema); ``store`` reads and writes through a
:class:`prodstate.client.Client`; ``cli`` and ``schema_cli`` are ``prodstate config``.
"""
