"""The `keras-adv` job: data, models, the sweep, its results and reports, the CLI.

Built on the library; the library never imports it.
"""
