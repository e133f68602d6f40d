"""PyInstaller runtime hook of a ``--cpu-only`` build made with a CUDA build of torch.

That bundle keeps the CUDA libraries torch links against (it does not import without
them) but not those it loads for GPU work (cuDNN's engines, cuSOLVER). On a machine with
an NVIDIA GPU, torch would still report CUDA as available and the first convolution on
it would fail, so hide every GPU before torch is imported: the app runs on the CPU.
"""

import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""
