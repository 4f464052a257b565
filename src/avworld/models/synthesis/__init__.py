"""π-AVAS: flow-matching refinement of simulated binaural audio (torch).

:mod:`.refiner` the gated-convolution velocity network u_t(psi, x_tx, p; theta), :mod:`.pose` its pose
features, :mod:`.flow` Algorithm 1's interpolation and target, :mod:`.solvers` Euler / Midpoint / Heun
with a counter of network calls (NFE). Never imports the simulator.
"""

from avworld.models.synthesis.flow import flow_loss, interpolate, velocity_target
from avworld.models.synthesis.pose import pose_features
from avworld.models.synthesis.refiner import GatedConvRefiner, RefinerConfig
from avworld.models.synthesis.solvers import SOLVERS, CountingField, solve

__all__ = ["GatedConvRefiner", "RefinerConfig", "pose_features", "interpolate", "velocity_target", "flow_loss",
           "SOLVERS", "CountingField", "solve"]
