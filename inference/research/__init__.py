"""The research path: a torch Gemma that runs over the same GGUF weights as llama.cpp, the KV-compression policies
(StreamingLLM, H2O, SnapKV, PyramidKV, merging, KIVI quantization, whole lines) that need attention scores llama.cpp
does not expose, and their evaluation on code and needle samples. It needs the `torch` extra and is not used at
completion time: the product path lives in `cove.inference`, and nothing there imports this package.
"""
