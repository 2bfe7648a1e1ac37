"""MM7 (3GPP TS 23.140): the SOAP-over-HTTP interface between the gateway (a VASP) and a carrier's MMSC.

The pure codec builds and parses every MM7 message the gateway sends or receives: ``status`` (versions,
namespaces, status codes and what they mean), ``records`` (the values built from and parsed into), ``mime``
(the multipart/related around the SOAP), ``build`` (what the gateway sends) and ``parse`` (what it reads).
"""
