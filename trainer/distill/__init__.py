"""Knowledge distillation for ``labrador train``: losses (pure), the loss step, the offline top-k cache."""
