"""hilt: hardware-in-the-loop training and FPGA co-design of neural processing elements."""

__version__ = "0.1.0"
