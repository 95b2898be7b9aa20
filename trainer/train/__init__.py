"""Training: phase files -> packed micro-batches -> one loop with a pluggable loss step -> checkpoints.

torch is imported only here and below, so ``labrador check`` stays torch-free.
"""
