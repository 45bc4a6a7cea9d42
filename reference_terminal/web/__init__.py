"""The terminal's web console (ISC-2 §8.2 「WEB管理」): server-rendered pages under ``/console/``
over the management API (:mod:`.console`, registered by ``reference_terminal.api.create_app``),
charts as inline SVG (:mod:`.charts`)."""
