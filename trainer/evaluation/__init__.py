"""Judged per-leaf evaluation: did a model learn each leaf's seed examples better than its baseline?

Both models answer each leaf's seed questions greedily through their own chat template; a judge (any teacher)
scores every answer from 1 to 10 against the seed's answer, each answer alone (no position bias), as
structured output. Per leaf: mean scores, the delta, and a verdict. ``labrador evaluate`` prints it; the
nightly job gates on it. Layers: ``questions`` (the taxonomy), ``answering`` and ``judging`` (teachers),
``verdicts`` (pure), ``run`` (the one entry point), ``output`` (table, chart), ``seen`` (which leaves a
model was trained on). Nothing is imported here: ``labrador`` registers the command on installs without the
generation and training extras.
"""
