"""Loudspeaker-node simulator for protocol v1 (stands in for vendor hardware).

It depends on nothing in this project but ``devices.protocol``, the wire contract, so it doubles as a
reference implementation of the node side for vendors.
"""

from firmware_sim.fleet import Fleet
from firmware_sim.node import NodeConfig, SimNode

__all__ = ["Fleet", "NodeConfig", "SimNode"]
