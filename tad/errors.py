"""The one exception type for bad user input, shared by every package.

Its message is a single line naming the file (or video) and the problem, which the
CLI prints as is, without a traceback.
"""
from __future__ import annotations


class TadInputError(ValueError):
    def __init__(self, path: object, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        # Survives pickling between processes (extraction workers, DataLoader workers).
        return (type(self), (self.path, self.problem))
