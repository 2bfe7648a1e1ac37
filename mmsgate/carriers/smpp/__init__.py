"""SMPP 3.4: fallback SMS to an SMSC, and the receipts and inbound SMS that come back.

``encoding`` turns a text into GSM 7-bit or UCS-2 segments and back; ``pdus`` holds the command statuses and
TLV tags and reads the PDUs we receive; ``link`` is one bound TCP connection; ``connector`` is the
:class:`~mmsgate.sms.base.SmsConnector` that binds, submits and supervises one or two links, and
``receiving`` answers what arrives on them (receipts, MO reassembled from its segments). aiosmpplib
provides the classes that encode the PDUs we send, and the SMPP enums.
"""
