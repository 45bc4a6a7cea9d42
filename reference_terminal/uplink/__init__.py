"""The terminal's upload path (ISC-2 §7.2.4, CSMT §7, CPCIF §8.3): per-centre durable outbox,
HJ 212 and HTTPS clients, retries and backfill, answers to platform commands.

``Uplink(config, store, clock)`` is what the terminal runs (``await uplink.run()``, one client
task per centre); its methods ``resend``, ``backfill_corrected`` and ``send_now`` are what the
management API calls (CSMT §7.5).
"""
