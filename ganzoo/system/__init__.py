"""The base layer: CPU kernels and the device description, files and downloads, checks of user-given numbers. Imports
no other part of ganzoo.
"""
