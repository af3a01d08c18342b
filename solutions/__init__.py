"""Reference solutions, one module per assignment, names = exercise ids.

The hidden autograder (autograder/) compares student answers with these on fresh inputs.
Never released to students.
"""
