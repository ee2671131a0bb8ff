"""Chapter 0 (00_setup) — instructor's solutions (not installed with flashtrade_lib)."""

from flashtrade_lib.course.solutions import solution, wrong


@solution("ch00-cores", call=True)
def cores():
    import os

    return os.cpu_count()


@wrong("ch00-cores", expect="logical cores", call=True)
def cores_plus_one():
    import os

    return (os.cpu_count() or 1) + 1
