"""The only modules that talk to vendor management libraries (NVML)."""
