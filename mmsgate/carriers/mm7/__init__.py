"""MM7 (3GPP TS 23.140): the SOAP-over-HTTP interface between the gateway (a VASP) and a carrier's MMSC.

``messages`` is the pure codec: it builds and parses every MM7 message the gateway sends or receives.
"""
