"""SMS fallback: the connector interface, the sandbox connector and the stored SMS connections (the SMPP
connector and its encoding are in :mod:`mmsgate.carriers.smpp`)."""
