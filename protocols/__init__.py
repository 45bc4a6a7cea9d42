"""Sans-I/O wire formats: bytes in, typed frames out, and back. No sockets, clocks or asyncio."""
