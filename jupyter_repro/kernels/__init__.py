"""Kernels of discovered environments: spec manager, activating launcher, synced kernelspecs."""
