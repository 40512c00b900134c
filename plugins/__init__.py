"""The built-in zoo. Each subpackage is a plugin registered through the ``ganzoo`` entry-point group."""
