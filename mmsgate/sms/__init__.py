"""SMS fallback: the connectors that send it (sandbox, SMPP) and the encoding that splits it."""
