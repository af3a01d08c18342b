"""The hidden autograder's engine: run a student's notebook out of reach, then let the pytest
suite in autograder/ ask it questions with plain data and compare answers in the grader.

- ``wire``     plain-data codec (no pickle) between grader and sandbox
- ``student``  the ``Student`` handle tests use (call / get / run) and its errors
- ``expect``   assertions whose messages are safe to show students
- ``plugin``   pytest plugin: fixtures, the ``exercise`` marker, per-exercise scores
"""
