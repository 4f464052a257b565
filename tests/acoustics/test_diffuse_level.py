"""Level of the late field against diffuse-field theory (steady-state energy balance).

For a unit-energy impulse, the direct sound at distance r carries (1 / (4 pi r))^2 and
the reverberant field 1 / (pi A) with A the equivalent absorption area (Eyring:
A = -S ln(1 - alpha)), so total / direct = 1 + 16 pi r^2 / A. Ray tracing plus image
sources must reproduce that within a dB or so in a shoebox with uniform absorption.
"""

import numpy as np
import pytest

from avworld.acoustics.spatial_rir import AcousticConfig, AcousticEngine
from avworld.acoustics.synthesis import mono_rir

from .rooms import shoebox

SIZE = (5.0, 4.0, 2.7)


@pytest.mark.parametrize("alpha", [0.1, 0.2, 0.3])
@pytest.mark.parametrize("mic", [(2.0, 1.5, 1.5), (3.5, 2.8, 1.5)])
def test_total_to_direct_energy_matches_diffuse_field_theory(alpha, mic):
    engine = AcousticEngine(shoebox(SIZE, absorption=alpha, scattering=0.1), AcousticConfig(max_rir_s=2.0))
    src, mic = np.array([1.5, 1.2, 1.3]), np.array(mic)
    r = float(np.linalg.norm(src - mic))
    h = mono_rir(engine.spatial_rir(src, mic)).astype(np.float64)
    measured_db = 10 * np.log10(np.sum(h**2) / (1.0 / (4 * np.pi * r)) ** 2)
    s = 2 * (SIZE[0] * SIZE[1] + SIZE[0] * SIZE[2] + SIZE[1] * SIZE[2])
    theory_db = 10 * np.log10(1 + 16 * np.pi * r**2 / (-s * np.log(1 - alpha)))
    assert measured_db == pytest.approx(theory_db, abs=1.5)
