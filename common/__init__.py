"""The stdlib-only base below every package (DESIGN.md): what the reference terminal, the
simulators and the bench all need and none may take from another — the clock protocol, and the
follower side of virtual time across processes. It imports nothing of the project's others."""
