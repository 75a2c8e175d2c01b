"""Transient (RMS phasor) simulation of the campus: loss of mains, switchover to the battery, bus transfer.

Sub-modules: :mod:`.network` (reduced admittance matrices from the pandapower net), :mod:`.motor` (induction motor
equivalent circuits), :mod:`.itic` (voltage-duration curve checks: ITIC, PCS overload), :mod:`.psu` (server PSU
hold-up), :mod:`.sim` (the simulator), :mod:`.emt` (electromagnetic-transient cross-check of a reduced equivalent).
"""
