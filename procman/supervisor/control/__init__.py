"""The control channel of a running ``procman start``: a Unix socket speaking JSON lines."""
