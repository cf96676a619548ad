"""Amaranth components: the processing elements, their arrays and stream interfaces."""
