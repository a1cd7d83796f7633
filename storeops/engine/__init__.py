"""The engine: packs, expressions, decision tables, audit trail and adapters.

Pure library code; the CLI in ``storeops.cli`` is a thin layer over it.
"""
