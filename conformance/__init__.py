"""Clause-by-clause conformance suites that judge any terminal through the dut adapter."""
