"""The CUDA kernel's launcher, launch parameters, NVRTC and the doctor. Imports only core."""
