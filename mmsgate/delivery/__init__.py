"""Delivery: the engine that carries a message to a carrier and back, throughput limits, inbound MMS."""
