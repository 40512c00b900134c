"""The core: the registry of components, the run specs, the typed records every layer above passes around, and the
store of runs the sweep writes and the reporter reads.
"""
