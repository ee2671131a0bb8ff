"""The course kit: instructor-only solutions, the student release and autograding.

Nothing in this package is a solution: the solutions live in the repository's
``course/solutions/`` folder, which the package does not install.
"""
