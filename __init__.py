"""Labrador: grow a model from community contributions (taxonomy checker, LAB synthetic data, training with replay,
the pull-request bot).

One import package, so nothing we install shadows another project's name. Its sub-packages are the pipeline, in
the order dependencies point: :mod:`labrador.validators` (checks a taxonomy; no torch) <- :mod:`labrador.trainer`
(generation, training, evaluation, the nightly job) <- :mod:`labrador.bot` (the pull-request bot). In the
repository they are the top-level folders ``validators/``, ``trainer/`` and ``bot/`` (see ``pyproject.toml``).
"""
