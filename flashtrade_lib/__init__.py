"""flashtrade_lib — the helper library of *FlashAttention for algorithmic trading*.

Every chapter imports from here, and the code a chapter explains is this code
(shown with :func:`flashtrade_lib.show.show_source`), so what the book teaches is
what the test suite checks.
"""

__version__ = "0.1.0"
