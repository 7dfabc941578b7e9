"""The pure heart of the pipeline: no I/O, no framework imports.

Allowed imports: the standard library, the keccak binding (`sha3`), and `solders` for keys and
PDAs (never RPC). Every service depends on this package; it depends on none of them.
"""
