"""Virtual electrospinning lab."""
