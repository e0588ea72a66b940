"""Where the CUDA kernel is: its file and its entry point, named once.

Read by the GPU layer (``flashviz.gpu.launch_params`` compiles and launches it) and by the
lab (``flashviz.lab.code_view`` shows it beside the inner step); both import core only.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # holds flashviz/ and kernels/
KERNEL_PATH = REPO_ROOT / "kernels" / "flash_attention.cu"
KERNEL_NAME = "flash_attention_fwd"  # the extern "C" __global__ function in KERNEL_PATH
TC_KERNEL_PATH = REPO_ROOT / "kernels" / "flash_attention_tc.cu"  # tensor cores
TC_KERNEL_NAME = "flash_attention_tc_fwd"
