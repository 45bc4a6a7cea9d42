"""Tests of the conformance package: the clause catalogue and its coverage."""
