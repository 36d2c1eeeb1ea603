"""Kernel capture: load the BPF objects, read the shared ring buffer, decode records."""

from logira.probes.loader import ProbeConfig, ProbeError, Probes
from logira.probes.ringbuf import RingReader

__all__ = ["ProbeConfig", "ProbeError", "Probes", "RingReader"]
