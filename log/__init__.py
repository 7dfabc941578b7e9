"""The log's contract: topic specs and client configurations, the Avro codec, and the SlotBatch
encoder and decoder (one module). Every producer and consumer of the log goes through it.
"""
