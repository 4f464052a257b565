"""First-order edge diffraction around door openings, for sources the listener cannot see.

Without line of sight the direct sound only passes *through* walls (transmission); in a real
house most of it bends around the edges of the doorway the two rooms share, and arrives from
the doorway. For every open door this module finds the shortest source -> edge -> listener path
over each of the opening's three edges (two jambs, the lintel; the wall is modelled as a thin
screen at its centre plane) of the doors whose wall separates the two, keeps the paths whose two
legs are unobstructed, and gives each an
amplitude per octave band from the **uniform theory of diffraction** (UTD; Kouyoumjian & Pathak,
Proc. IEEE 62 (1974); for acoustics e.g. Tsingos et al., SIGGRAPH 2001) for a rigid half-plane
(wedge index n = 2), with the point-source spreading factor: the pressure amplitude is

    |D(phi, phi', beta0, k)| / (4 pi sqrt(s' s (s' + s)))

(``s'`` source -> edge, ``s`` edge -> listener; the free-field convention 1 / (4 pi d) of the
image sources), evaluated at each band's centre frequency. The arrival's direction is that of the
edge point seen from the listener, its delay ``(s' + s) / c``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import fresnel

from avworld.acoustics.bands import BANDS_HZ, air_amplitude

_INSET_M = 0.02  # edge points are taken this far inside the opening, off the jamb's surface


def _fresnel_tail(x: np.ndarray) -> np.ndarray:
    """F(X) = 2 i sqrt(X) exp(i X) int_sqrt(X)^inf exp(-i t^2) dt, the UTD transition function (X >= 0)."""
    u = np.sqrt(np.maximum(x, 0.0))
    s, c = fresnel(u * np.sqrt(2.0 / np.pi))
    tail = np.sqrt(np.pi / 2.0) * ((0.5 - c) - 1j * (0.5 - s))
    return 2j * u * np.exp(1j * x) * tail


def _a(beta: np.ndarray, sign: int, n: float = 2.0) -> np.ndarray:
    """a+-(beta) = 2 cos^2((2 pi n N - beta) / 2), N the integer that best satisfies 2 pi n N - beta = +-pi."""
    N = np.round((beta + sign * np.pi) / (2.0 * np.pi * n))
    return 2.0 * np.cos((2.0 * np.pi * n * N - beta) / 2.0) ** 2


def utd_coefficient(phi: np.ndarray, phi_src: np.ndarray, L: np.ndarray, k: np.ndarray,
                    sin_beta0: np.ndarray | float = 1.0) -> np.ndarray:
    """UTD diffraction coefficient of a rigid half-plane (n = 2): angles from the screen's face (0..2 pi),
    distance parameter ``L`` = s s' / (s + s') sin^2(beta0) (m), wavenumbers ``k`` (broadcast)."""
    n = 2.0
    out = 0.0
    for beta, sgn in ((phi - phi_src, 1), (phi + phi_src, 1)):
        for s in (1, -1):
            cot = 1.0 / np.tan((np.pi + s * beta) / (2.0 * n))
            out = out + sgn * cot * _fresnel_tail(k * L * _a(beta, s))
    return -np.exp(-1j * np.pi / 4) / (2.0 * n * np.sqrt(2.0 * np.pi * k) * sin_beta0) * out


def _edges(door):
    """The opening's three edges as (start (3,), end (3,), screen direction (3,)): the screen (the wall)
    extends from the edge along the screen direction, away from the opening."""
    c = np.array([*door.center, 0.0])
    t = np.array([*door.tangent, 0.0])
    z0, z1 = door.floor_z, door.floor_z + door.height_m
    hw = door.width_m / 2.0
    up = np.array([0.0, 0.0, 1.0])
    out = []
    for side in (-1.0, 1.0):
        p = c + side * (hw - _INSET_M) * t
        out.append((p + z0 * up, p + (z1 - _INSET_M) * up, side * t))
    out.append((c - hw * t + (z1 - _INSET_M) * up, c + hw * t + (z1 - _INSET_M) * up, up))
    return out


def _closest_on_edge(a: np.ndarray, b: np.ndarray, S: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Point of the segment a-b minimizing |S E| + |E L| (where the unfolded path is straight), clipped."""
    e = b - a
    length = np.linalg.norm(e)
    u = e / length
    s_along, l_along = (S - a) @ u, (L - a) @ u
    ds = np.linalg.norm((S - a) - s_along * u)
    dl = np.linalg.norm((L - a) - l_along * u)
    x = s_along + (l_along - s_along) * ds / max(ds + dl, 1e-9)
    return a + np.clip(x, 0.0, length) * u


def _angle_from(screen: np.ndarray, axis: np.ndarray, v: np.ndarray) -> float:
    """Angle (0..2 pi) of ``v`` around the edge ``axis``, measured from the screen direction."""
    v = v - (v @ axis) * axis
    x = v @ screen
    y = v @ np.cross(axis, screen)
    return float(np.arctan2(y, x) % (2.0 * np.pi))


def edge_arrivals(scene, rc, source, listener, speed_m_s: float, air_absorption: bool = True):
    """Diffracted arrivals around the scene's open doors: (path lengths (A,), pressure amplitude per band
    (A, 7), unit directions from the listener toward the edge (A, 3)). Empty when no edge path exists."""
    S, L = np.asarray(source, float), np.asarray(listener, float)
    paths, gains, dirs = [], [], []
    k = 2.0 * np.pi * BANDS_HZ / speed_m_s
    # doors whose wall separates the source from the listener (sound bends through them)
    doors = [d for d in scene.doors if d.is_open
             and (np.dot(S[:2] - d.center, d.normal) * np.dot(L[:2] - d.center, d.normal)) < 0]
    edges = [(a, b, screen) for door in doors for a, b, screen in _edges(door)]
    if not edges:
        return np.zeros(0), np.zeros((0, 7)), np.zeros((0, 3))
    points = np.array([_closest_on_edge(a, b, S, L) for a, b, _ in edges])
    n = len(points)
    # both legs of every edge path in one visibility query
    blocked = rc.occluded(np.concatenate([points, points]), np.concatenate([np.tile(S, (n, 1)), np.tile(L, (n, 1))]))
    blocked = blocked[:n] | blocked[n:]
    for (a, b, screen), E, off in zip(edges, points, blocked):
        if off:
            continue
        axis = (b - a) / np.linalg.norm(b - a)
        s_src, s_lis = np.linalg.norm(E - S), np.linalg.norm(L - E)
        if s_src < 1e-3 or s_lis < 1e-3:
            continue
        sin_b = max(np.sqrt(max(1.0 - ((S - E) @ axis / s_src) ** 2, 0.0)), 0.05)
        phi_src = _angle_from(screen, axis, S - E)
        phi = _angle_from(screen, axis, L - E)
        Lp = s_src * s_lis / (s_src + s_lis) * sin_b**2
        d = np.abs(utd_coefficient(phi, phi_src, Lp, k, sin_b))
        g = d / (4.0 * np.pi * np.sqrt(s_src * s_lis * (s_src + s_lis)))
        if air_absorption:
            g = g * air_amplitude(np.array([s_src + s_lis]))[0]
        paths.append(s_src + s_lis)
        gains.append(g)
        dirs.append((E - L) / s_lis)
    if not paths:
        return np.zeros(0), np.zeros((0, 7)), np.zeros((0, 3))
    return np.asarray(paths), np.asarray(gains), np.asarray(dirs)
