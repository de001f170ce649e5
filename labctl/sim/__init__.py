"""A moto-style ONTAP REST simulator: models (state and rules), responses (REST shaping), urls (routes),
exceptions (ONTAP's error envelope), control (`/_sim/*`), server (HTTPS and lifecycle).

It imports nothing from labctl's client side; `labctl sim ontap` and the tests wire it.
"""

from labctl.sim.server import OntapSimulator, SimConfigError, serve

__all__ = ["OntapSimulator", "SimConfigError", "serve"]
