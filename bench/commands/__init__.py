"""The commands flopwatt's CLI offers, one package or module each."""
