"""Built-in datasets: 2-D mixtures and sklearn digits (embedded, offline), downloads, any image folder."""

from ganzoo import hookimpl

from . import digits, downloads, image_folder, mixtures


@hookimpl
def register_datasets(register):
    mixtures.register_all(register)
    digits.register_all(register)
    downloads.register_all(register)
    image_folder.register_all(register)
