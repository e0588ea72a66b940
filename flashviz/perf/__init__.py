"""CPU benchmarks and the roofline model. Imports only core."""
