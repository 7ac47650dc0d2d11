"""Observing MLX: everything that calls MLX to see a run as it happens.

Stream names and placements (``streams``), a function bound to its arguments
(``call``), MLX's entry points patched to report each op (``intercept``), ops
handed to their streams (``recorder``) and their ends stamped (``waiters``),
allocator counters (``sampler``), and the
graph MLX records (``trace``, reading MLX's export file in ``mlxfn``). Each
writes plain data from ``unimem.model``. ``native`` reaches the optional C++
module ``unimem_native`` (built from ``native/``): the pending graph and
per-primitive times stamped on the streams' own threads, where it is installed.
"""
