"""The terminal's security core (ISC-2 §7.4.1, SSEA §5.5.3), one job per module, no HTTP:

- :mod:`.passwords` — complexity and expiry rules, PBKDF2-HMAC-SM3 hashes, constant-time checks;
- :mod:`.roles` — the three roles and the permission matrix (least privilege);
- :mod:`.users` — accounts in a sealed file, lockout, the administrator's source networks;
- :mod:`.sessions` — bearer sessions with idle timeout and lifetime on the terminal's clock;
- :mod:`.audit` — the SM3 hash-chained, sealed audit log in the store;
- :mod:`.secrets` — the key file, SM4 + HMAC-SM3 sealing of credentials and configuration;
- :mod:`.redaction` — secrets hidden from (and restored into) configuration documents;
- :mod:`.service` — all of it for one terminal; :mod:`.errors` — the refusals, quoting clauses.

The management API wires it in (``reference_terminal/api/security.py``, ``secured.py``) when
the configuration's ``security.enabled`` is true.
"""
