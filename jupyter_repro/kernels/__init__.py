"""Kernels for discovered environments: the spec manager, the activating launcher, synced kernelspecs."""
