"""Electromagnetic-transient (EMT) cross-check of the switchover: an average-value model of a reduced equivalent.

Scope
-----
The RMS (fundamental-frequency phasor) simulator (:mod:`twin.transient.sim`) is valid from about one cycle after an
event. This module checks it over the first 200 ms of a loss of mains with an instantaneous-value model of a
*reduced equivalent* of the campus:

- utility source: ideal three-phase 50 Hz EMF behind its Thevenin R-L (``Z = c U^2 / S_sc``, ``c = 1``, from the
  case's short-circuit power and X/R), disconnected by a breaker at ``t_event``;
- one 10 kV bus (the point of connection, POC) with the campus cable capacitance;
- one aggregated hall: the incoming cable and the parallel hall/cooling/auxiliary transformers as one series R-L
  (leakage impedance from ``vk_percent``/``vkr_percent``; magnetising branch neglected), a shunt capacitor at the
  hall LV board (the PSUs' EMI-filter capacitors), and a load seen by the grid as server PSUs' power-factor-corrector
  front ends (constant power with a DC-link energy, current limit, brown-out and dropout);
- one aggregated PCS: an average-value voltage-source converter behind its L filter and its step-up transformer,
  grid-following (SRF-PLL, dq current control) before islanding detection and grid-forming (EMF behind a virtual
  impedance with P-f and Q-V droop, active damping, current limiting by a virtual resistance that grows with the
  current above the limit) after it.

The grid-forming structure is a direct voltage control: the converter voltage is the droop EMF minus the part of
the virtual impedance that the physical filter does not provide, applied to the current low-passed over 1 ms, minus
an active-damping resistance on the rest of the current. (A virtual admittance feeding a current loop, the other
common structure, was tried first: its quasi-static virtual reactance against the campus cable and EMI capacitance
is unstable once the hall drops out, as known from the literature.) At the mode change the EMF takes the PLL's
angle and frequency; the power filters run in both modes, so the droops start from the measured P and Q.

Everything is referred to the 10 kV side in SI units (V, A, ohm, H, F); transformer phase shifts (all Dyn11 in the
seed case) are dropped, which changes no magnitude. Three-phase quantities are balanced and three-wire, so they
are computed as the complex space vector ``x = x_alpha + j x_beta`` of the amplitude-invariant Clarke transform
(phase-peak values; ``p = 1.5 Re(v conj(i))``) and the phase quantities ``a, b, c`` are recovered exactly from it.
There is no zero sequence and no unbalance: single-phase faults are outside the scope.

Numerical method
----------------
Dommel's EMTP method: each R-L branch and capacitor is replaced by its trapezoidal-rule companion (a conductance
and a history current source) and the three node voltages (POC, PCS terminal, hall) are solved every step from the
nodal equations; the hall load enters the nodal matrix as an admittance ``(2/3)(p - jq)/|v|_f^2`` (exactly the
current a PFC front end draws in phase with the voltage) so the network solution is implicit. Controls are
sampled once per step with a one-step measurement delay (as in a digital controller) and the converter voltage is
held over the step. The time step (default 20 us, 1,000 steps a cycle) resolves the network's resonances
(a few kHz) and the control loops (bandwidths up to a few hundred Hz); the trapezoidal rule's frequency warping
at 50 Hz is ``(w dt)^2 / 12 = 3e-6``, and the initial state is the steady state of the discretised circuit.

Simplifications (each stated where it is used):

- the breaker's current is brought to zero with a time constant ``breaker_decay_s`` (1 ms) instead of interrupting
  each phase at its own current zero; the arc absorbs the source inductance's energy, so no chopping overvoltage
  appears (an instantaneous chop into the cable capacitance would give a numerical, not physical, spike);
- islanding detection is its delay only (a transfer-trip signal): the PCS changes mode at
  ``t_event + detection_delay_s + mode_change_delay_s``;
- the battery/DC side of the PCS is an ideal DC source (no modulation-index limit);
- cooling, auxiliaries and IT are one constant-power hall with one DC-link energy (the cooling motors' inertia and
  stall are the RMS simulator's business); ``hall_z_fraction`` of the load can be constant impedance;
- a PSU that has dropped out stays out for the rest of the run (restart takes seconds, beyond 200 ms).

Validity and the comparison band
--------------------------------
The one-cycle sliding DFT (:func:`positive_sequence_magnitude`) gives the fundamental positive-sequence magnitude
the RMS simulator computes. Inside the cycle after an event the two cannot agree: the RMS model replaces the first
cycle by delays and jumps, and the DFT window still holds the event. What remains afterwards is what an RMS model
omits by construction: the network's DC offsets and LC ringing (a few hundred Hz to a few kHz here), which the DFT
rejects except for their leakage while they decay, and the different shape of current limiting (instantaneous
in RMS, through the inductances here). :func:`compare_fundamental` compares the EMT DFT magnitude with the RMS
magnitude averaged over the same one-cycle window (so the DFT's averaging lag is not counted), from
``skip_cycles`` = 1.5 cycles after each event (breaker opening, PCS mode change, hall dropout), against
:data:`BAND_PU` = 0.02 pu. Measured in ``tests/test_transient_emt.py`` against a phasor model of the same
equivalent (algebraic network, instantaneous breaker, current-source grid-following PCS, grid-forming EMF behind
the virtual impedance with a hard current limit, the same PSU model) in six islanding cases (ride-through with the
battery idle or discharging, slower detection, 1.1x and 3x overloads, a seed-like 10 MW hall with 3 ms detection):
at most 0.0086 pu from 1.5 cycles after each event, and PSU dropout times 0.6-2.7 ms apart; at exactly one cycle
the window still holds the first-cycle transient (up to 0.067 pu), hence the extra half cycle. The band is about
2.3 times the largest measured difference, and well above the error of aggregating the campus into one hall and
one PCS (3.5e-4 pu at the hall, 1.2e-3 pu at the PCS terminal against the seed case's full load flow).

One case falls outside the band, and the cross-check exists to find such cases: with 15 ms of detection and mode
change, the hall's PSUs brown out while the grid-following PCS still injects 4 MW into the unloaded cable and
filter capacitance. A phasor model puts the voltage at once where ``I = w C V`` (up to 17 pu); here the capacitors
charge over milliseconds (8 pu instantaneous peak). The grid-forming Q-V droop then carries the absorbed reactive
power through its power filter, and the two differ by 0.036 pu at 1.5 cycles, 0.021 pu at 2 and under 0.01 pu
from 3 cycles. The band presumes the RMS model uses the same control structures and parameters; differences in
those are what the cross-check is meant to show.

Why hand-written
----------------
No Python EMT library fits this use. The closest is DPsim (``pip install dpsim``: a C++ solver with Python bindings,
EMT and dynamic-phasor domains, MNA with trapezoidal companions, an EMT average-value grid-following inverter
``EMT::Ph3::AvVoltageSourceInverterDQ`` with PLL and power/current control). What this study needs beyond that --
the grid-following to grid-forming mode change with droop, virtual impedance and current limiting, and a PSU load
with DC-link hold-up, brown-out and dropout -- would have to be written as new C++ components against its component
API, and DPsim's wheels cover x86-64 Linux and Windows only. pandapower, power-grid-model and PyPSA are steady-state
tools, and TOPS / PYPOWER-Dynamics are RMS (phasor) simulators. A three-node equivalent needs a few hundred lines
of numba with Dommel's method, which keeps the model in the project's own Python, as data and functions
(DESIGN.md: "write our own only where none fits").

References
----------
H. W. Dommel, "Digital computer solution of electromagnetic transients in single- and multiphase networks",
IEEE Trans. PAS-88(4), 1969. A. Yazdani, R. Iravani, *Voltage-Sourced Converters in Power Systems*, Wiley 2010
(average-value VSC, SRF-PLL, dq current control). J. Rocabert et al., "Control of power converters in AC
microgrids", IEEE Trans. Power Electron. 27(11), 2012 (grid-forming droop, virtual impedance). IEC 60909-0
(source impedance). ITIC (CBEMA) curve and Intel PSU hold-up (REFERENCE.md "Ride-through of IT load").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numba
import numpy as np
import xarray as xr

__all__ = ["EmtEquivalent", "simulate_emt", "equivalent_from_case", "positive_sequence_magnitude",
           "fundamental_magnitude", "compare_fundamental", "steady_state", "BAND_PU"]

BAND_PU = 0.02
"""Agreement band between the EMT and RMS fundamental voltages, in pu, from 1.5 cycles after each event."""

_A = np.exp(2j * np.pi / 3)


@dataclass
class EmtEquivalent:
    """Parameters of the reduced equivalent (SI referred to the 10 kV side unless a field says pu).

    Attributes
    ----------
    f_hz : float
        Nominal frequency, Hz.
    vn_kv : float
        Nominal line-to-line voltage of the 10 kV side, kV (the pu base of every voltage).
    s_sc_mva : float
        Short-circuit power of the utility at the POC, MVA (``Z_s = vn_kv^2 / s_sc_mva``, IEC 60909 with c = 1).
    x_r : float
        X/R ratio of the utility source impedance.
    z_hall_ohm : complex
        Series impedance of incoming cable + hall feeder cables + hall transformers (parallel, aggregated), ohm.
    z_pcs_ohm : complex
        Series impedance of PCS cables + step-up transformers (parallel), ohm.
    hall_p_mw, hall_q_mvar : float
        Aggregated hall active and reactive power before the event, MW and Mvar (consumption positive).
    v_poc_pu : float
        POC voltage magnitude before the event, pu (the load flow's ext_grid voltage; the source EMF is solved
        from it).
    c_poc_uf : float
        Shunt capacitance per phase (star equivalent) at the POC: the campus cables, uF.
    c_hall_uf : float
        Shunt capacitance per phase at the hall bus: PSU EMI-filter capacitors, referred to 10 kV, uF.
    hall_holdup_s : float
        Hold-up time of the PSUs' DC link at the hall's pre-event power, s (usable energy = this x hall_p_mw).
    hall_brownout_pu : float
        PSUs stop drawing current below this fundamental voltage, pu.
    hall_restart_pu : float
        ... and start drawing again above this one (brown-out hysteresis), pu.
    hall_current_limit_pu : float
        PFC input current limit in pu of the current at hall_p_mw and nominal voltage.
    hall_voltage_filter_s : float
        Time constant of the PFC's voltage-magnitude estimate, s.
    hall_recharge_s : float
        Time constant of the DC-link energy recovery after a dip (DC-link voltage loop), s.
    hall_z_fraction : float
        Fraction of the hall load that is constant impedance (the rest is constant power), 0-1.
    hall_recharge_fraction : float
        Extra input power that recharges the DC link after a dip, fraction of the hall's power.
    hall_restart_delay_s : float
        Time the voltage must stay above ``hall_restart_pu`` before browned-out PSUs draw power again, s.
    pcs_sn_mva : float
        Aggregated PCS apparent-power rating, MVA (0: no PCS). Base of every PCS pu quantity.
    pcs_p_mw, pcs_q_mvar : float
        PCS setpoints at its terminals, MW and Mvar (delivery positive).
    pcs_current_limit_pu : float
        PCS current limit, pu of rated current.
    pcs_filter_r_pu, pcs_filter_x_pu : float
        Converter filter inductor resistance and reactance, pu of the PCS base.
    pll_bandwidth_hz, pll_damping : float
        SRF-PLL natural frequency (Hz) and damping ratio.
    current_tau_s : float
        Closed-loop time constant of the dq current control, s.
    virtual_r_pu, virtual_x_pu : float
        Grid-forming virtual impedance, pu of the PCS base.
    droop_p_f_percent, droop_q_v_percent : float
        Frequency drop per rated power (pcs_sn_mva) and EMF drop per rated reactive power, percent.
    power_filter_s : float
        Low-pass time constant of the measured P and Q used by the droops, s.
    gfm_v_set_pu : float
        Grid-forming EMF magnitude at Q = pcs_q_mvar, pu.
    detection_delay_s, mode_change_delay_s : float
        Islanding detection delay and grid-following to grid-forming mode-change delay, s.
    breaker_decay_s : float
        Time constant with which the breaker brings the source current to zero, s.
    virtual_current_filter_s : float
        Low-pass time constant of the current the grid-forming virtual impedance acts on, s.
    current_limit_r_gain_pu : float
        Grid-forming current limiting: virtual resistance added per pu of current above the limit, pu.
    active_damping_r_pu : float
        Grid-forming active damping: virtual resistance on the current's deviation from its low-passed value, pu.
    """

    f_hz: float = 50.0
    vn_kv: float = 10.0
    s_sc_mva: float = 150.0
    x_r: float = 5.0
    z_hall_ohm: complex = complex(0.05, 0.35)
    z_pcs_ohm: complex = complex(0.2, 1.2)
    hall_p_mw: float = 10.0
    hall_q_mvar: float = 2.0
    v_poc_pu: float = 1.0
    c_poc_uf: float = 1.5
    c_hall_uf: float = 6.0
    hall_holdup_s: float = 0.010
    hall_brownout_pu: float = 0.6
    hall_restart_pu: float = 0.7
    hall_current_limit_pu: float = 1.5
    hall_voltage_filter_s: float = 0.002
    hall_recharge_s: float = 0.02
    hall_z_fraction: float = 0.0
    hall_recharge_fraction: float = 0.3
    hall_restart_delay_s: float = 0.002
    pcs_sn_mva: float = 4.4
    pcs_p_mw: float = 4.0
    pcs_q_mvar: float = 0.0
    pcs_current_limit_pu: float = 1.2
    pcs_filter_r_pu: float = 0.005
    pcs_filter_x_pu: float = 0.10
    pll_bandwidth_hz: float = 20.0
    pll_damping: float = 0.707
    current_tau_s: float = 0.002
    virtual_r_pu: float = 0.02
    virtual_x_pu: float = 0.15
    droop_p_f_percent: float = 2.0
    droop_q_v_percent: float = 4.0
    power_filter_s: float = 0.02
    gfm_v_set_pu: float = 1.0
    detection_delay_s: float = 0.010
    mode_change_delay_s: float = 0.005
    breaker_decay_s: float = 0.001
    virtual_current_filter_s: float = 0.001
    current_limit_r_gain_pu: float = 10.0
    active_damping_r_pu: float = 0.3

    def __post_init__(self):
        pos = ("f_hz", "vn_kv", "s_sc_mva", "x_r", "v_poc_pu", "hall_holdup_s", "hall_current_limit_pu",
               "hall_voltage_filter_s", "hall_recharge_s", "pcs_current_limit_pu", "pcs_filter_x_pu",
               "pll_bandwidth_hz", "pll_damping", "current_tau_s", "power_filter_s", "gfm_v_set_pu",
               "breaker_decay_s", "virtual_current_filter_s")
        for k in pos:
            if not getattr(self, k) > 0:
                raise ValueError(f"EmtEquivalent.{k} must be positive, found {getattr(self, k)!r}")
        nonneg = ("c_poc_uf", "c_hall_uf", "hall_p_mw", "hall_brownout_pu", "pcs_sn_mva", "pcs_filter_r_pu",
                  "virtual_r_pu", "virtual_x_pu", "droop_p_f_percent", "droop_q_v_percent", "detection_delay_s",
                  "mode_change_delay_s", "current_limit_r_gain_pu", "active_damping_r_pu", "hall_recharge_fraction",
                  "hall_restart_delay_s")
        for k in nonneg:
            if not getattr(self, k) >= 0:
                raise ValueError(f"EmtEquivalent.{k} must be >= 0, found {getattr(self, k)!r}")
        for k in ("z_hall_ohm", "z_pcs_ohm"):
            z = complex(getattr(self, k))
            if z.real < 0 or z.imag <= 0:
                raise ValueError(f"EmtEquivalent.{k} must have R >= 0 and X > 0 ohm, found {z!r}")
        if not 0 <= self.hall_z_fraction <= 1:
            raise ValueError(f"EmtEquivalent.hall_z_fraction must lie in 0..1, found {self.hall_z_fraction!r}")
        if self.hall_restart_pu < self.hall_brownout_pu:
            raise ValueError(f"hall_restart_pu ({self.hall_restart_pu}) must be >= hall_brownout_pu "
                             f"({self.hall_brownout_pu})")
        if self.pcs_sn_mva > 0 and (self.virtual_r_pu == 0 and self.virtual_x_pu == 0):
            raise ValueError("the grid-forming virtual impedance must not be zero")
        if self.pcs_sn_mva > 0 and abs(complex(self.pcs_p_mw, self.pcs_q_mvar)) > self.pcs_sn_mva * (1 + 1e-9):
            raise ValueError(f"PCS setpoint |{self.pcs_p_mw} + j{self.pcs_q_mvar}| MVA exceeds pcs_sn_mva "
                             f"({self.pcs_sn_mva})")

    # derived quantities (SI, phase-peak space-vector scale)
    @property
    def v_base_peak(self) -> float:
        """Space-vector magnitude of 1 pu voltage: the phase-peak voltage, V."""
        return self.vn_kv * 1e3 * math.sqrt(2.0 / 3.0)

    @property
    def z_source_ohm(self) -> complex:
        """Utility Thevenin impedance, ohm (IEC 60909-0 with c = 1)."""
        z = self.vn_kv ** 2 / self.s_sc_mva
        r = z / math.sqrt(1.0 + self.x_r ** 2)
        return complex(r, r * self.x_r)

    @property
    def z_filter_ohm(self) -> complex:
        """PCS filter inductor impedance referred to 10 kV, ohm."""
        if self.pcs_sn_mva <= 0:
            return complex(0.0, 1.0)
        zb = self.vn_kv ** 2 / self.pcs_sn_mva
        return complex(self.pcs_filter_r_pu, self.pcs_filter_x_pu) * zb


def _omega_discrete(f_hz: float, dt_s: float) -> float:
    """The reactance frequency of the trapezoidal rule: 2/dt tan(w dt/2), rad/s (its steady state is exact)."""
    return 2.0 / dt_s * math.tan(math.pi * f_hz * dt_s)


def steady_state(eq: EmtEquivalent, omega: float | None = None) -> dict:
    """Phasor solution of the reduced equivalent before the event.

    The POC voltage is ``eq.v_poc_pu`` at angle 0; the PCS delivers its setpoint at its terminals; the hall draws
    ``hall_p_mw + j hall_q_mvar`` at its bus. Solved by fixed-point iteration (the series impedances are small).

    Parameters
    ----------
    eq : EmtEquivalent
    omega : float, optional
        Angular frequency for the reactances, rad/s (default ``2 pi f``; the simulator passes the trapezoidal
        rule's warped frequency so that its initial state is exactly stationary).

    Returns
    -------
    dict
        Complex phase-peak phasors (V, A): ``e`` source EMF, ``v_poc``, ``v_pcs`` (PCS terminal), ``v_conv``
        (converter), ``v_hall``; currents ``i_source`` (into the POC), ``i_hall`` (POC to hall), ``i_pcs``
        (converter to POC), ``i_load`` (hall load); and ``v_*_pu`` magnitudes in pu.
    """
    w = 2 * math.pi * eq.f_hz if omega is None else omega
    vb = eq.v_base_peak

    def zx(z: complex) -> complex:  # rescale the 50 Hz reactance to omega
        return complex(z.real, z.imag * w / (2 * math.pi * eq.f_hz))

    zs, zh, zp, zf = zx(eq.z_source_ohm), zx(eq.z_hall_ohm), zx(eq.z_pcs_ohm), zx(eq.z_filter_ohm)
    vp = eq.v_poc_pu * vb + 0j
    s_pcs = complex(eq.pcs_p_mw, eq.pcs_q_mvar) * 1e6 if eq.pcs_sn_mva > 0 else 0j
    s_hall = complex(eq.hall_p_mw, eq.hall_q_mvar) * 1e6
    vt, vh = vp, vp
    ip, il = 0j, 0j
    for _ in range(200):
        ip = (s_pcs / (1.5 * vt)).conjugate()
        il = (2.0 / 3.0) * s_hall.conjugate() / vh.conjugate()
        vt_new = vp + zp * ip
        vh_new = vp - zh * (il + 1j * w * eq.c_hall_uf * 1e-6 * vh)
        done = abs(vt_new - vt) + abs(vh_new - vh) < 1e-10 * vb
        vt, vh = vt_new, vh_new
        if done:
            break
    else:
        raise ValueError("the pre-event steady state did not converge: the hall load is too large for the "
                         "impedances (voltage collapse)")
    ih = il + 1j * w * eq.c_hall_uf * 1e-6 * vh
    i_s = ih + 1j * w * eq.c_poc_uf * 1e-6 * vp - ip
    return {"e": vp + zs * i_s, "v_poc": vp, "v_pcs": vt, "v_conv": vt + zf * ip, "v_hall": vh,
            "i_source": i_s, "i_hall": ih, "i_pcs": ip, "i_load": il,
            "v_poc_pu": abs(vp) / vb, "v_pcs_pu": abs(vt) / vb, "v_hall_pu": abs(vh) / vb}


@numba.njit(cache=True)
def _kernel(n, dt, w0, e_mag, e_ang, t_open, t_mode, brk_tau,
            rs, ls, rh, lh, rx, lx, rf, lf, cp, ch,
            has_pcs, vb, p_cp, q_cp, y_z, e_max, t_m, t_rc, rc_max, i_hall_max, v_bo, v_rs, t_rs,
            p_set, q_set, i_pcs_max, kp_pll, ki_pll, kp_cc, ki_cc, zv, mp, nq, v_gfm, t_pf, t_vi, k_lim, r_ad,
            x0, out_c, out_r):
    """Time loop: trapezoidal companions, nodal solution, controls sampled once per step.

    All quantities SI referred to 10 kV, space vectors complex (phase-peak). ``n`` steps of ``dt`` (s); ``w0``
    rad/s; source EMF ``e_mag`` (V) at ``e_ang`` (rad); breaker opens at ``t_open`` (s), its current decaying with
    ``brk_tau`` (s); PCS mode change at ``t_mode`` (s). Branch R (ohm) and L (H): source ``rs, ls``, hall path
    ``rh, lh``, PCS transformer ``rx, lx``, PCS filter ``rf, lf``; shunt C (F) ``cp`` (POC), ``ch`` (hall). Hall:
    constant-power part ``p_cp, q_cp`` (W, var), constant-impedance admittance ``y_z`` (S), usable DC-link energy
    ``e_max`` (J), filter and recharge time constants ``t_m, t_rc`` (s), recharge headroom ``rc_max`` (fraction),
    current limit ``i_hall_max`` (A peak), brown-out/restart ``v_bo, v_rs`` (pu), restart delay ``t_rs`` (s). PCS: setpoints ``p_set, q_set`` (W, var), current limit ``i_pcs_max`` (A
    peak), PLL gains ``kp_pll`` (rad/s per pu), ``ki_pll`` (rad/s^2 per pu), current PI ``kp_cc`` (ohm), ``ki_cc``
    (ohm/s), virtual impedance ``zv`` (ohm), droops ``mp`` (1/W), ``nq`` (1/var), EMF ``v_gfm`` (V), filters
    ``t_pf, t_vi`` (s), limiting gain ``k_lim`` (ohm per relative overcurrent), active damping ``r_ad`` (ohm).
    ``x0``: initial [e, v_poc, v_pcs, v_hall, i_source, i_hall, i_pcs, v_conv, i_cpoc, i_chall, x_cc, i_load].
    Writes ``out_c`` (7, n+1) complex [v_poc, v_pcs, v_hall, i_source, i_hall, i_pcs, i_load] and ``out_r`` (6, n+1)
    [f_pcs (Hz), mode, dropped, DC energy (fraction), breaker closed, PSU on].
    """
    vp, vt, vh = x0[1], x0[2], x0[3]
    i_s, i_h, i_x, vc = x0[4], x0[5], x0[6], x0[7]
    gs = 1.0 / (2.0 * ls / dt + rs)
    gh = 1.0 / (2.0 * lh / dt + rh)
    gx = 1.0 / (2.0 * lx / dt + rx) if has_pcs else 0.0
    gf = 1.0 / (2.0 * lf / dt + rf) if has_pcs else 0.0
    gcp = 2.0 * cp / dt
    gch = 2.0 * ch / dt
    icp = x0[8]
    ich = x0[9]
    e_prev = x0[0]
    # hall states
    m2 = abs(vh) ** 2
    e_dc = e_max
    on = 1.0 if abs(vh) >= v_bo * vb else 0.0
    t_above = 0.0
    dropped = 0.0
    y_p = 0j
    # PCS control states
    theta = np.angle(vt) if has_pcs else 0.0
    w_pll = w0
    x_pll = 0.0
    x_cc = x0[10]
    p_f = (1.5 * vt * np.conj(i_x)).real
    q_f = (1.5 * vt * np.conj(i_x)).imag
    mode = 0.0
    i_lp = 0j
    g_i = 1.0 - math.exp(-dt / t_vi)
    zf_c = complex(rf, w0 * lf)
    theta_g = 0.0
    w_g = w0
    is_open = False
    i_open = 0j
    t = 0.0
    for k in range(n + 1):
        t = k * dt
        if k > 0:
            # ---- controls, sampled with the previous step's measurements (one-step delay) ----
            if has_pcs:
                if mode == 0.0 and t >= t_mode:
                    mode = 1.0
                    theta_g = theta
                    w_g = w_pll
                    i_lp = i_x * np.exp(-1j * theta)
                # measurements of step k-1 in the frame of step k-1; output rotated to step k's angle
                if mode == 0.0:
                    ang_old = theta
                    vdq = vt * np.exp(-1j * ang_old)
                    err = vdq.imag / vb
                    w_pll = w0 + kp_pll * err + x_pll
                    if w_pll > 1.2 * w0 or w_pll < 0.8 * w0:
                        w_pll = min(max(w_pll, 0.8 * w0), 1.2 * w0)
                    else:
                        x_pll += ki_pll * err * dt
                    theta += w_pll * dt
                    vd = max(vdq.real, 0.2 * vb)
                    iref = (2.0 / 3.0) * complex(p_set, -q_set) / vd
                    w_ctrl = w_pll
                    ang_new = theta
                    if abs(iref) > i_pcs_max:
                        iref = iref * (i_pcs_max / abs(iref))
                    idq = i_x * np.exp(-1j * ang_old)
                    err_i = iref - idq
                    x_cc += ki_cc * err_i * dt
                    vc_dq = vdq + kp_cc * err_i + x_cc + 1j * w_ctrl * lf * idq
                else:
                    # grid-forming: EMF behind the virtual impedance (its part beyond the physical filter applied
                    # quasi-statically to the low-passed current), active damping on the rest of the current,
                    # and current limiting by a virtual resistance that grows above the current limit
                    ang_old = theta_g
                    idq = i_x * np.exp(-1j * ang_old)
                    i_lp += (idq - i_lp) * g_i
                    w_g = w0 * (1.0 - mp * (p_f - p_set))
                    theta_g += w_g * dt
                    ang_new = theta_g
                    emf = v_gfm * (1.0 - nq * (q_f - q_set))
                    over = max(abs(i_lp), abs(idq)) / i_pcs_max - 1.0
                    r_lim = k_lim * over if over > 0.0 else 0.0
                    vc_dq = emf - (zv - zf_c + r_lim) * i_lp - r_ad * (idq - i_lp)
                vc_new = vc_dq * np.exp(1j * ang_new)
            else:
                vc_new = 0j
            # ---- network step: trapezoidal companions ----
            e_now = e_mag * np.exp(1j * (w0 * t + e_ang))
            hs = gs * ((e_prev - vp) + (2.0 * ls / dt - rs) * i_s)
            hh = gh * ((vp - vh) + (2.0 * lh / dt - rh) * i_h)
            hx = gx * ((vt - vp) + (2.0 * lx / dt - rx) * i_x) if has_pcs else 0j
            hf = gf * ((vc - vt) + (2.0 * lf / dt - rf) * i_x) if has_pcs else 0j
            hcp = gcp * vp + icp
            hch = gch * vh + ich
            if (not is_open) and t >= t_open:
                is_open = True
                i_open = i_s
            # hall PFC admittance from the lagged magnitude estimate and DC-link state
            if dropped == 0.0 and on == 1.0 and m2 > 1e-6 * vb * vb:
                p_cmd = min(p_cp + (e_max - e_dc) / t_rc, p_cp * (1.0 + rc_max))
                q_cmd = q_cp * (p_cmd / p_cp) if p_cp > 0 else 0.0
                y_p = (2.0 / 3.0) * complex(p_cmd, -q_cmd) / m2
            else:
                y_p = 0j
            for it in range(4):
                y_l = y_z + y_p
                # eliminate vt and vh into the POC equation
                a_t = gf + gx
                a_h = gh + gch + y_l
                diag = gh + gcp + gx - gh * gh / a_h
                rhs = hcp - hh + hx + gh * (hh + hch) / a_h
                if has_pcs:
                    diag -= gx * gx / a_t
                    rhs += gx * (gf * vc_new + hf - hx) / a_t
                if is_open:
                    rhs += i_open * np.exp(-(t - t_open) / brk_tau)
                else:
                    diag += gs
                    rhs += gs * e_now + hs
                vp_n = rhs / diag
                vh_n = (hh + hch + gh * vp_n) / a_h
                ip_n = abs(y_p * vh_n)
                if ip_n <= i_hall_max * (1.0 + 1e-9) or it == 3:
                    break
                y_p = y_p * (i_hall_max / ip_n)  # PFC current limit: re-solve with the limited admittance
            vt_n = (gf * vc_new + hf - hx + gx * vp_n) / a_t if has_pcs else 0j
            if is_open:
                i_s = i_open * np.exp(-(t - t_open) / brk_tau)
            else:
                i_s = gs * (e_now - vp_n) + hs
            i_h = gh * (vp_n - vh_n) + hh
            i_x = gx * (vt_n - vp_n) + hx if has_pcs else 0j
            icp = gcp * vp_n - hcp
            ich = gch * vh_n - hch
            vp, vt, vh, vc, e_prev = vp_n, vt_n, vh_n, vc_new, e_now
            # ---- hall PSU states (explicit, after the network solution) ----
            i_pl = y_p * vh
            p_in = (1.5 * vh * np.conj(i_pl)).real
            if dropped == 0.0:
                e_dc = min(e_dc + dt * (p_in - p_cp), e_max)
                if e_dc <= 0.0 and p_cp > 0.0:
                    e_dc = 0.0
                    dropped = 1.0
            m2 += (abs(vh) ** 2 - m2) * (1.0 - math.exp(-dt / t_m))
            v_f = math.sqrt(m2) / vb
            if on == 1.0 and v_f < v_bo:
                on = 0.0
                t_above = 0.0
            elif on == 0.0:
                t_above = t_above + dt if v_f > v_rs else 0.0
                if t_above >= t_rs - 1e-12:
                    on = 1.0
            if has_pcs:
                s_t = 1.5 * vt * np.conj(i_x)
                g = 1.0 - math.exp(-dt / t_pf)
                p_f += (s_t.real - p_f) * g
                q_f += (s_t.imag - q_f) * g
        # ---- outputs ----
        out_c[0, k] = vp
        out_c[1, k] = vt
        out_c[2, k] = vh
        out_c[3, k] = i_s
        out_c[4, k] = i_h
        out_c[5, k] = i_x
        out_c[6, k] = (y_z + y_p) * vh if k > 0 else x0[11]
        out_r[0, k] = (w_pll if mode == 0.0 else w_g) / (2.0 * math.pi)
        out_r[1, k] = mode
        out_r[2, k] = dropped
        out_r[3, k] = e_dc / e_max if e_max > 0 else 0.0
        out_r[4, k] = 0.0 if is_open else 1.0
        out_r[5, k] = on
    return 0


def fundamental_magnitude(x, dt_s: float, f_hz: float = 50.0) -> np.ndarray:
    """Peak magnitude of the fundamental of a real signal by a one-cycle sliding DFT.

    Parameters
    ----------
    x : array_like, shape (..., n)
        Samples at a fixed step, any unit.
    dt_s : float
        Sampling step, s; one cycle must be a whole number ``N`` of steps.
    f_hz : float
        Fundamental frequency, Hz.

    Returns
    -------
    numpy.ndarray, shape (..., n)
        ``(2/N) |sum over the last N samples of x e^{-j w t}|`` (the peak amplitude, in the unit of ``x``); NaN for
        the first ``N - 1`` samples (no full cycle yet). Exact for a pure sinusoid at ``f_hz`` (orthogonality of the
        DFT over a whole cycle), and rejects DC and every harmonic exactly.
    """
    x = np.asarray(x, dtype=float)
    return 2.0 * np.abs(_window_sum(x, dt_s, f_hz))


def positive_sequence_magnitude(x_abc, dt_s: float, f_hz: float = 50.0) -> np.ndarray:
    """Magnitude of the fundamental positive sequence of three phase signals by a one-cycle sliding DFT.

    Parameters
    ----------
    x_abc : array_like, shape (3, n)
        Phase quantities a, b, c at a fixed step (e.g. phase-to-neutral voltages in kV).
    dt_s, f_hz : float
        Sampling step (s; one cycle must be a whole number of steps) and fundamental frequency (Hz).

    Returns
    -------
    numpy.ndarray, shape (n,)
        Phase-peak magnitude of the positive sequence, in the unit of ``x_abc`` (divide by the peak phase voltage
        ``vn sqrt(2/3)`` for pu); NaN for the first ``N - 1`` samples. Negative and zero sequence, DC and harmonics
        are rejected exactly over a whole cycle.
    """
    xa, xb, xc = np.asarray(x_abc, dtype=float)
    z = (xa + _A * xb + _A.conjugate() * xc) * (2.0 / 3.0)  # alpha + j beta, amplitude invariant
    return np.abs(_window_sum(z, dt_s, f_hz))


def _window_sum(z, dt_s: float, f_hz: float) -> np.ndarray:
    n_cyc = 1.0 / (f_hz * dt_s)
    n = int(round(n_cyc))
    if abs(n - n_cyc) > 1e-6 * n_cyc:
        raise ValueError(f"dt_s = {dt_s} s does not divide one cycle of {f_hz} Hz into a whole number of steps")
    k = np.arange(z.shape[-1])
    rot = np.exp(-2j * np.pi * k / n)
    c = np.cumsum(z * rot, axis=-1)
    c = np.concatenate([np.zeros(c.shape[:-1] + (1,), dtype=complex), c], axis=-1)
    out = np.full(z.shape, np.nan + 0j)
    out[..., n - 1:] = (c[..., n:] - c[..., :-n]) / n
    return out


def _abc(z: np.ndarray) -> np.ndarray:
    """Phase values a, b, c from the amplitude-invariant space vector (no zero sequence)."""
    return np.stack([z.real, (z * _A.conjugate()).real, (z * _A).real])


def simulate_emt(eq: EmtEquivalent, t_end_s: float = 0.2, t_event_s: float = 0.04, dt_s: float = 2e-5,
                 start: str = "steady_state") -> xr.Dataset:
    """Simulate a loss of mains on the reduced equivalent with the average-value EMT model.

    Parameters
    ----------
    eq : EmtEquivalent
        The equivalent (:func:`equivalent_from_case` builds it from a case).
    t_end_s : float
        Simulated time, s.
    t_event_s : float
        Time at which the utility breaker opens, s (beyond ``t_end_s``: never).
    dt_s : float
        Fixed time step, s; one cycle must be a whole number of steps (for the sliding DFT).
    start : {"steady_state", "de-energised"}
        ``"steady_state"``: from the pre-event phasor solution (:func:`steady_state`), stationary to round-off.
        ``"de-energised"``: every current and voltage zero, the source (EMF ``v_poc_pu`` at angle 0) switched on at
        t = 0, the hall's constant-impedance part sized at nominal voltage (an energisation; no PCS allowed).

    Returns
    -------
    xarray.Dataset
        Dimensions ``time`` (s) and ``phase`` (a, b, c). Instantaneous phase-to-neutral voltages ``v_poc_kv``,
        ``v_pcs_kv`` (PCS terminal), ``v_hall_kv`` and currents ``i_source_ka`` (into the POC), ``i_hall_ka`` (POC
        to hall), ``i_pcs_ka`` (PCS to POC), ``i_load_ka`` (hall load), all referred to 10 kV; one-cycle sliding-DFT
        positive-sequence magnitudes ``v_poc_pu``, ``v_pcs_pu``, ``v_hall_pu``; instantaneous powers ``p_pcs_mw``,
        ``q_pcs_mvar`` (at the PCS terminal, delivered), ``p_hall_mw`` (drawn by the hall load), ``p_source_mw``;
        ``f_pcs_hz`` (PLL or droop frequency), ``pcs_mode`` (0 grid-following, 1 grid-forming),
        ``hall_dropout_fraction``, ``hall_dc_energy_pu`` (of the usable hold-up energy), ``hall_psu_on``,
        ``breaker_closed``. ``attrs`` hold every parameter and the event times.
    """
    if start not in ("steady_state", "de-energised"):
        raise ValueError(f"start must be 'steady_state' or 'de-energised', found {start!r}")
    if not (dt_s > 0 and t_end_s > 0):
        raise ValueError(f"dt_s ({dt_s}) and t_end_s ({t_end_s}) must be positive")
    n_cyc = 1.0 / (eq.f_hz * dt_s)
    if abs(round(n_cyc) - n_cyc) > 1e-6 * n_cyc or n_cyc < 20:
        raise ValueError(f"dt_s = {dt_s} s must divide one cycle of {eq.f_hz} Hz into a whole number (>= 20) of "
                         f"steps")
    has_pcs = eq.pcs_sn_mva > 0
    if start == "de-energised" and has_pcs:
        raise ValueError("start='de-energised' needs an equivalent without PCS (pcs_sn_mva = 0): the PCS controls "
                         "need a live grid to synchronise to")
    w0 = 2 * math.pi * eq.f_hz
    wd = _omega_discrete(eq.f_hz, dt_s)
    vb = eq.v_base_peak
    n = int(round(t_end_s / dt_s))
    zs, zh, zx, zf = eq.z_source_ohm, eq.z_hall_ohm, eq.z_pcs_ohm, eq.z_filter_ohm
    p_h, q_h = eq.hall_p_mw * 1e6, eq.hall_q_mvar * 1e6
    zf_ = eq.hall_z_fraction
    x0 = np.zeros(12, dtype=np.complex128)
    if start == "steady_state":
        ss = steady_state(eq, omega=wd)
        x0[:] = [ss["e"], ss["v_poc"], ss["v_pcs"], ss["v_hall"], ss["i_source"], ss["i_hall"], ss["i_pcs"],
                 ss["v_conv"], 1j * wd * eq.c_poc_uf * 1e-6 * ss["v_poc"],
                 1j * wd * eq.c_hall_uf * 1e-6 * ss["v_hall"], 0, ss["i_load"]]
        if has_pcs:  # current-control integrator: the filter's resistive drop in the PLL frame
            x0[10] = eq.pcs_filter_r_pu * eq.vn_kv ** 2 / eq.pcs_sn_mva * ss["i_pcs"] * np.exp(
                -1j * np.angle(ss["v_pcs"]))
        v_ref2 = abs(ss["v_hall"]) ** 2
        e_mag, e_ang = abs(ss["e"]), float(np.angle(ss["e"]))
    else:
        v_ref2 = vb ** 2
        e_mag, e_ang = eq.v_poc_pu * vb, 0.0
        x0[0] = e_mag  # the source is switched on at t = 0: e(0+) enters the first trapezoidal step
    y_z = (2.0 / 3.0) * zf_ * complex(p_h, -q_h) / v_ref2
    p_cp, q_cp = (1 - zf_) * p_h, (1 - zf_) * q_h
    sb = eq.pcs_sn_mva * 1e6
    zb = eq.vn_kv ** 2 / eq.pcs_sn_mva if has_pcs else 1.0
    lf = zf.imag / w0
    wn = 2 * math.pi * eq.pll_bandwidth_hz
    t_mode = t_event_s + eq.detection_delay_s + eq.mode_change_delay_s
    out_c = np.zeros((7, n + 1), dtype=np.complex128)
    out_r = np.zeros((6, n + 1))
    _kernel(n, dt_s, w0, e_mag, e_ang, t_event_s, t_mode, eq.breaker_decay_s,
            zs.real, zs.imag / w0, zh.real, zh.imag / w0, zx.real, zx.imag / w0, zf.real, lf,
            eq.c_poc_uf * 1e-6, eq.c_hall_uf * 1e-6,
            has_pcs, vb, p_cp, q_cp, y_z, eq.hall_holdup_s * p_h * (1 - zf_), eq.hall_voltage_filter_s,
            eq.hall_recharge_s, eq.hall_recharge_fraction, eq.hall_current_limit_pu * p_h / (1.5 * vb),
            eq.hall_brownout_pu, eq.hall_restart_pu, eq.hall_restart_delay_s, eq.pcs_p_mw * 1e6, eq.pcs_q_mvar * 1e6,
            eq.pcs_current_limit_pu * sb / (1.5 * vb) if has_pcs else 0.0,
            2 * eq.pll_damping * wn, wn * wn, lf / eq.current_tau_s, zf.real / eq.current_tau_s,
            complex(eq.virtual_r_pu, eq.virtual_x_pu) * zb, eq.droop_p_f_percent / 100 / sb if has_pcs else 0.0,
            eq.droop_q_v_percent / 100 / sb if has_pcs else 0.0, eq.gfm_v_set_pu * vb, eq.power_filter_s,
            eq.virtual_current_filter_s, eq.current_limit_r_gain_pu * zb, eq.active_damping_r_pu * zb,
            x0, out_c, out_r)
    return _to_dataset(eq, out_c, out_r, dt_s, t_event_s, t_mode, start, e_mag)


def _to_dataset(eq, out_c, out_r, dt_s, t_event_s, t_mode, start, e_mag) -> xr.Dataset:
    n1 = out_c.shape[1]
    t = np.arange(n1) * dt_s
    vb = eq.v_base_peak
    vp, vt, vh, i_s, i_h, i_x, i_l = out_c
    dims = ("phase", "time")

    def inst(z, scale, units, name):
        return xr.Variable(dims, _abc(z) * scale, {"units": units, "long_name": name})

    def mag(z, name):
        return xr.Variable(("time",), np.abs(_window_sum(z, dt_s, eq.f_hz)) / vb,
                           {"units": "pu", "long_name": f"{name}: fundamental positive-sequence magnitude "
                                                        f"(one-cycle sliding DFT; NaN in the first cycle)"})

    def real(x, units, name):
        return xr.Variable(("time",), x, {"units": units, "long_name": name})

    s_pcs = 1.5 * vt * np.conj(i_x) / 1e6
    ds = xr.Dataset(
        {"v_poc_kv": inst(vp, 1e-3, "kV", "POC phase-to-neutral voltage"),
         "v_pcs_kv": inst(vt, 1e-3, "kV", "PCS terminal phase-to-neutral voltage, referred to 10 kV"),
         "v_hall_kv": inst(vh, 1e-3, "kV", "hall bus phase-to-neutral voltage, referred to 10 kV"),
         "i_source_ka": inst(i_s, 1e-3, "kA", "utility current into the POC"),
         "i_hall_ka": inst(i_h, 1e-3, "kA", "current from the POC to the hall, referred to 10 kV"),
         "i_pcs_ka": inst(i_x, 1e-3, "kA", "PCS current into the POC, referred to 10 kV"),
         "i_load_ka": inst(i_l, 1e-3, "kA", "hall load current, referred to 10 kV"),
         "v_poc_pu": mag(vp, "POC voltage"),
         "v_pcs_pu": mag(vt, "PCS terminal voltage"),
         "v_hall_pu": mag(vh, "hall bus voltage"),
         "p_pcs_mw": real(s_pcs.real, "MW", "PCS active power delivered at its terminals (instantaneous)"),
         "q_pcs_mvar": real(s_pcs.imag, "Mvar", "PCS reactive power delivered at its terminals (instantaneous)"),
         "p_hall_mw": real((1.5 * vh * np.conj(i_l)).real / 1e6, "MW", "power drawn by the hall load"),
         "p_source_mw": real((1.5 * vp * np.conj(i_s)).real / 1e6, "MW", "utility power into the POC"),
         "f_pcs_hz": real(out_r[0], "Hz", "PCS control frequency (PLL in grid-following, droop in grid-forming)"),
         "pcs_mode": real(out_r[1], "1", "PCS mode: 0 grid-following, 1 grid-forming"),
         "hall_dropout_fraction": real(out_r[2] * (1 - eq.hall_z_fraction), "1",
                                       "fraction of the hall load whose PSUs have dropped out"),
         "hall_dc_energy_pu": real(out_r[3], "1", "PSU DC-link usable energy, fraction of the hold-up energy"),
         "hall_psu_on": real(out_r[5], "1", "PSU front ends drawing current (1) or in brown-out (0)"),
         "breaker_closed": real(out_r[4], "1", "utility breaker closed (1) or open (0)")},
        coords={"time": ("time", t, {"units": "s", "long_name": "time"}), "phase": ["a", "b", "c"]})
    attrs = {k: (str(v) if isinstance(v, complex) else v) for k, v in asdict(eq).items()}
    attrs.update({"t_event_s": t_event_s, "t_mode_change_s": t_mode, "dt_s": dt_s, "start": start,
                  "source_emf_kv_ll": e_mag / eq.v_base_peak * eq.vn_kv, "model": "twin.transient.emt",
                  "band_pu": BAND_PU})
    ds.attrs.update(attrs)
    return ds


def compare_fundamental(emt: xr.Dataset, rms_time_s, rms_v_pu, var: str = "v_hall_pu",
                        events_s=None, band_pu: float = BAND_PU, skip_cycles: float = 1.5) -> dict:
    """Compare an EMT fundamental magnitude with an RMS simulator's voltage magnitude.

    The RMS trace is interpolated onto the EMT time and averaged over the same one-cycle window the DFT uses (so
    the DFT's half-cycle lag is not counted as disagreement); samples within ``skip_cycles`` cycles after an event
    (the breaker opening, the PCS mode change, the hall dropout, and any extra ``events_s``) are excluded.

    Parameters
    ----------
    emt : xarray.Dataset
        Result of :func:`simulate_emt`.
    rms_time_s, rms_v_pu : array_like
        RMS simulator time (s) and voltage magnitude (pu) at the bus corresponding to ``var``.
    var : str
        ``"v_poc_pu"``, ``"v_pcs_pu"`` or ``"v_hall_pu"``.
    events_s : sequence of float, optional
        Further event times, s (the hall dropout is found from ``hall_dropout_fraction``).
    band_pu : float
        Agreement band, pu (module docstring: why 0.02 pu).
    skip_cycles : float
        Cycles excluded after each event: the DFT window plus the ring-down of the network's LC modes.

    Returns
    -------
    dict
        ``max_abs_diff_pu``, ``t_at_max_s``, ``band_pu``, ``pass`` and ``n_compared``.
    """
    t = emt.time.values
    dt = float(emt.attrs["dt_s"])
    f = float(emt.attrs["f_hz"])
    period = 1.0 / f
    v_rms = np.interp(t, np.asarray(rms_time_s, float), np.asarray(rms_v_pu, float))
    v_avg = _window_sum(v_rms.astype(complex) * np.exp(2j * np.pi * f * t), dt, f)  # undo the rotation
    v_avg = np.abs(v_avg)
    ev = [float(emt.attrs["t_event_s"]), float(emt.attrs["t_mode_change_s"])] + list(events_s or [])
    drop = emt["hall_dropout_fraction"].values
    if drop.max() > 0:
        ev.append(float(t[np.argmax(drop > 0)]))
    mask = np.isfinite(emt[var].values) & (t >= period - dt / 2)
    for te in ev:
        mask &= ~((t >= te) & (t < te + skip_cycles * period))
    d = np.abs(emt[var].values - v_avg)
    d = np.where(mask, d, 0.0)
    k = int(np.argmax(d))
    return {"max_abs_diff_pu": float(d[k]), "t_at_max_s": float(t[k]), "band_pu": band_pu,
            "pass": bool(d[k] <= band_pu), "n_compared": int(mask.sum())}


_DYNAMICS_KEYS = {"pll_bandwidth_hz": ("pll_bandwidth_hz", 1.0), "pll_damping": ("pll_damping", 1.0),
                  "current_tau_ms": ("current_tau_s", 1e-3), "current_limit_pu": ("pcs_current_limit_pu", 1.0),
                  "virtual_r_pu": ("virtual_r_pu", 1.0), "virtual_x_pu": ("virtual_x_pu", 1.0),
                  "droop_p_f_percent": ("droop_p_f_percent", 1.0), "droop_q_v_percent": ("droop_q_v_percent", 1.0),
                  "power_filter_ms": ("power_filter_s", 1e-3), "mode_change_delay_ms": ("mode_change_delay_s", 1e-3),
                  "detection_delay_ms": ("detection_delay_s", 1e-3), "filter_x_pu": ("pcs_filter_x_pu", 1.0),
                  "filter_r_pu": ("pcs_filter_r_pu", 1.0)}


def _pcs_dynamics(pcs) -> dict:
    """EmtEquivalent fields from the PCS model's optional ``dynamics`` table (absent keys keep the defaults)."""
    dyn = getattr(pcs, "dynamics", None)
    if dyn is None:
        return {}
    get = dyn.get if isinstance(dyn, dict) else (lambda k, d=None: getattr(dyn, k, d))
    out = {}
    for key, (field, scale) in _DYNAMICS_KEYS.items():
        v = get(key, None)
        if v is not None:
            out[field] = float(v) * scale
    return out


def _campus_dynamics(case, name: str | None) -> dict:
    """EmtEquivalent fields from the case's dynamics parameter set (``models/dynamics/<name>.toml``).

    PCS controls from ``[pcs]``; the detection delay from ``[detection]`` (the transfer-trip delay when the case
    signals the breaker, else the undervoltage element's operate time: a loss of mains with a mismatched load
    collapses the voltage); the hall from ``[psu]``: hold-up at the PSUs' loading at full server power
    (:func:`twin.transient.psu.fit_holdup` through the two specification points), input current limit in pu of the
    hall's current (PSU limit / PSU loading), brown-out voltage, restart delay and recharge headroom. The IT PSUs'
    figures stand for the whole aggregated hall, cooling and auxiliaries included. Empty when the case names no
    dynamics set.
    """
    opts = getattr(case.spec, "switchover", None)
    name = name or getattr(opts, "dynamics", None)
    if name is None:
        return {}
    from .params import load_dynamics
    from .psu import fit_holdup, holdup_s

    dyn = load_dynamics(case, name)
    out = {}
    for key, (field, scale) in _DYNAMICS_KEYS.items():
        v = getattr(dyn.pcs, key, None)
        if v is not None:
            out[field] = float(v) * scale
    det = dyn.detection
    out["detection_delay_s"] = (det.transfer_trip_ms if det.transfer_trip else det.undervoltage_ms) / 1e3
    psu = dyn.psu
    e_s, l0 = fit_holdup(psu.holdup_ms, psu.holdup_load_fraction)
    out.update(hall_holdup_s=float(holdup_s(psu.load_fraction, e_s, l0)),
               hall_current_limit_pu=psu.current_limit_pu / psu.load_fraction,
               hall_brownout_pu=psu.brownout_pu, hall_restart_pu=psu.brownout_pu,
               hall_restart_delay_s=psu.brownout_recovery_ms / 1e3, hall_recharge_fraction=psu.recharge_fraction)
    return out


def equivalent_from_case(case, op_name: str = "training_peak", sc: str = "min", dynamics: str | None = None,
                         **overrides) -> EmtEquivalent:
    """Aggregate a case at an operating point into the reduced equivalent.

    Aggregation (from the pandapower net and its load flow, :mod:`twin.network`):

    - source: the in-service incomers in parallel, ``S_sc`` summed, X/R of the chosen conditions; their cables are
      lumped into the hall path (they carry the net import; their impedance is about 1 % of the hall path's);
    - hall: every load (IT, cooling, auxiliaries, battery auxiliaries) and motor at its load-flow power, as one
      load; its feeder impedance ``z = sum_k z_k I_k^2 / (sum_k I_k)^2`` over the hall, cooling and auxiliary
      feeds (cable + transformer referred to 10 kV), which keeps the series losses and the mean voltage drop;
    - PCS: the in-service PCS sgens summed (setpoints and ratings), behind their cables and transformers in
      parallel; the PV is omitted when it produces nothing, else netted against the hall load;
    - capacitances: the campus cables' (``c_nf_per_km`` x length) at the POC; the PSUs' EMI filters as 2 % of the
      IT power in reactive power at the hall bus (typical X-capacitor sizing, L).

    Parameters
    ----------
    case : twin.case.Case
    op_name : str
        Operating point name.
    sc : {"min", "max"}
        Utility short-circuit conditions (``s_sc_min_mva``/``x_r_min`` or the max ones).
    dynamics : str, optional
        Dynamics parameter set ``models/dynamics/<name>.toml`` (default the case's ``[switchover] dynamics``), the
        same the RMS simulator uses: PCS controls, detection delay and PSU figures (:func:`_campus_dynamics`).
    **overrides
        Any :class:`EmtEquivalent` field, e.g. ``detection_delay_s=0.003``.

    Returns
    -------
    EmtEquivalent
        Parameters from, in rising priority: the dataclass defaults, a ``[dynamics]`` table of
        ``models/pcs/<pcs>.toml`` if the PCS model has one, the case's dynamics set, ``overrides``.
    """
    from .. import network as netmod

    if sc not in ("min", "max"):
        raise ValueError(f"sc must be 'min' or 'max', found {sc!r}")
    s = case.spec
    net = netmod.apply_operating_point(netmod.build_net(case), case, op_name)
    netmod.run_loadflow(net)
    vn = s.supply.vn_kv
    inc = [i for i in s.supply.incomers]
    s_sc = sum(i.s_sc_min_mva if sc == "min" else i.s_sc_max_mva for i in inc)
    x_r = inc[0].x_r_min if sc == "min" else inc[0].x_r_max
    line = net.line
    z_line = (line.r_ohm_per_km + 1j * line.x_ohm_per_km) * line.length_km / line.parallel
    z_inc = z_line[line.role == "incomer"]
    z_inc_par = 1.0 / np.sum(1.0 / z_inc.values)

    def trafo_z(i):
        t = net.trafo.loc[i]
        zb = t.vn_hv_kv ** 2 / t.sn_mva
        zk = t.vk_percent / 100 * zb
        rk = t.vkr_percent / 100 * zb
        return complex(rk, math.sqrt(zk ** 2 - rk ** 2)) * (vn / t.vn_hv_kv) ** 2 / t.parallel

    lv_bus_of_trafo = net.trafo.lv_bus
    hv_bus_of_trafo = net.trafo.hv_bus
    z_feed, i_feed, is_pcs = [], [], []
    pcs_buses = set(net.sgen.bus[(net.sgen.type == "PCS") & net.sgen.in_service])
    for i in net.trafo.index[net.trafo.in_service]:
        cable = line.index[(line.to_bus == hv_bus_of_trafo[i]) & line.in_service]
        zc = complex(z_line[cable].sum()) if len(cable) else 0j
        z_feed.append(zc + trafo_z(i))
        i_feed.append(float(net.res_trafo.at[i, "i_hv_ka"]))
        is_pcs.append(lv_bus_of_trafo[i] in pcs_buses)
    z_feed, i_feed, is_pcs = np.array(z_feed), np.array(i_feed), np.array(is_pcs)
    ld = ~is_pcs & (i_feed > 0)
    z_hall = np.sum(z_feed[ld] * i_feed[ld] ** 2) / np.sum(i_feed[ld]) ** 2 + z_inc_par
    z_pcs = 1.0 / np.sum(1.0 / z_feed[is_pcs]) if is_pcs.any() else complex(0.1, 1.0)
    loads = net.res_load[net.load.in_service]
    p_h = float(loads.p_mw.sum() + net.res_motor.p_mw.sum())
    q_h = float(loads.q_mvar.sum() + net.res_motor.q_mvar.sum())
    pv = (net.sgen.type == "PV") & net.sgen.in_service
    p_h -= float(net.res_sgen.p_mw[pv].sum())
    q_h -= float(net.res_sgen.q_mvar[pv].sum())
    pcs_m = (net.sgen.type == "PCS") & net.sgen.in_service
    pcs_sn = float(net.sgen.sn_mva[pcs_m].sum())
    p_pcs = float(net.res_sgen.p_mw[pcs_m].sum())
    q_pcs = float(net.res_sgen.q_mvar[pcs_m].sum())
    c_total = float((line.c_nf_per_km * line.length_km * line.parallel)[line.in_service].sum()) * 1e-3  # uF
    p_it = float(loads.p_mw[net.load.group == "it"].sum())
    w = 2 * math.pi * s.supply.frequency_hz
    c_hall = 0.02 * p_it * 1e6 / (w * (vn * 1e3) ** 2) * 1e6  # uF per phase (star), referred to 10 kV
    poc = net.bus.index[net.bus.role == "poc"]
    v_poc = float(net.res_bus.vm_pu[poc].mean())
    kw = {}
    if s.battery is not None:
        kw.update(_pcs_dynamics(case.model("pcs", s.battery.pcs)))
    kw.update(_campus_dynamics(case, dynamics))
    kw.update(f_hz=s.supply.frequency_hz, vn_kv=vn, s_sc_mva=s_sc, x_r=x_r, z_hall_ohm=complex(z_hall),
              z_pcs_ohm=complex(z_pcs), hall_p_mw=p_h, hall_q_mvar=q_h, v_poc_pu=v_poc, c_poc_uf=c_total,
              c_hall_uf=c_hall, pcs_sn_mva=pcs_sn, pcs_p_mw=p_pcs, pcs_q_mvar=q_pcs)
    kw.update(overrides)
    return EmtEquivalent(**kw)
