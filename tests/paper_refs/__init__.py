"""Hand-written reference forwards of SE, ECA and CBAM, written from the authors' code.

These modules do not import ``attncc``. Tests use them as an independent check on the
compiled blocks.
"""
