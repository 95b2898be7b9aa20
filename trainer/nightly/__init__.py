"""The nightly job: merged taxonomy changes in, regenerated data and a retrained, gated model out."""
