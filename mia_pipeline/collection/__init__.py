"""Collection: landing-zone events → validated, deduplicated, typed daily partitions.

Exactly once: every output (dataset partitions, raw lines, quarantine) is merged idempotently
(keys, ``(file, offset)``), and the landing-zone offsets are committed last. A crash at any point
leaves committed offsets behind the data already written; the re-run re-reads those bytes and the
merges drop what is already there.
"""
