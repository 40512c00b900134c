"""The plugin API: the hooks, what each kind of component promises, the plugin manager, class labels, how a dataset's
runs are judged.
"""
