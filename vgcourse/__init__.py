"""vgcourse: helpers for a notebook course on the vanishing gradient problem.

One concept per module: ``activations``, ``models``, ``data``, ``training``, ``probes``,
``monitor``, ``diagnosis``, ``plots``, ``widgets``, ``experiments``, ``variance``, ``normalization``,
``hidden_states``, ``recurrence``, ``clipping``, ``mystery``, ``doctor`` and ``cli``.
"""

__version__ = "0.1.0"
