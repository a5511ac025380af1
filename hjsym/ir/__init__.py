"""The intermediate representation shared by the derivation and code generation (functions and programs as data)."""

from .functions import ArgSpec, BatchSum, FunctionSpec, Let, Output, ProgramSpec

__all__ = ["ArgSpec", "FunctionSpec", "BatchSum", "Let", "Output", "ProgramSpec"]
