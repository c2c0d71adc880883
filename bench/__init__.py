"""flopwatt's harness: measures how much of a device's peak real kernels reach.

Importing this package touches no device and does not import torch.
"""
