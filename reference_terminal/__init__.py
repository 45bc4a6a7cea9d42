"""The reference terminal: a complete carbon-emission monitoring terminal (ISC-2, CSMT)."""
