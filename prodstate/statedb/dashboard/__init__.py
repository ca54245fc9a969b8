"""The read-only dashboard of ``prodstate web``: what it reads (``read``), how it shapes
records for people (``text``, ``charts``, ``tree``, ``feed``), its pages (``render`` with
the Jinja2 templates in ``templates/``), its metrics (``metrics``) and its routes
(``app``). The front-end files it serves (``static/``) are vendored with their licenses."""
