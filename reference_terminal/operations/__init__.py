"""Remote operations of the terminal (ISC-2 §8, CSMT §10.6, §11.12).

- :mod:`.system` — the host's resources: CPU, memory, disks, OS type and version (from
  ``/proc`` and the standard library; no extra dependency).
- :mod:`.errorlog` — the recent warnings and errors of the terminal's own log.
- :mod:`.journal` — the operations logs: acquisition, upload, method download, configuration
  and applications, kept in the store's event table and read by category.
- :mod:`.monitoring` — the remote monitoring document (``GET /monitor``): system,
  application, acquisition health per point, upload health per centre, error log.
- :mod:`.packages` and :mod:`.apps` — application modules installed, upgraded, rolled back
  and uninstalled remotely as SM2-signed packages, each run as a process of its own with no
  access to the store (ISC-2 §8.4, §4.3).
"""
