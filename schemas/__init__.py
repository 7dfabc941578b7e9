"""Package data: one Avro schema (`avro/*.avsc`) per record type on the log.

Read through `importlib.resources` (`aop.log.avro`), so an installed wheel finds them.
"""
