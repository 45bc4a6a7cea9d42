"""The bench's test PKI (ISC-2 §7.4.1): a certificate authority issuing SM2 device certificates.

``TestCa.create(directory)`` makes (or reopens) a root CA under ``directory``;
``ca.issue_device(public_key, subject=mn)`` certifies a terminal's SM2 key. The platform
centres trust ``ca.certificate_file`` and check every device certificate against it.
"""

from simulators.pki.authority import CaError, TestCa

__all__ = ["CaError", "TestCa"]
