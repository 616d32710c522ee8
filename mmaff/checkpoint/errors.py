"""The errors of checkpoint reading: one line each,
``checkpoint <path>: <problem>``, and subclasses of the built-in errors
callers caught before (``FileNotFoundError``, ``pickle.UnpicklingError``).
"""
import pickle


class CheckpointError(RuntimeError):
    """A checkpoint cannot be used; the message is one line,
    ``checkpoint <path>: <problem>``.

    Args:
        path (str): The checkpoint file.
        problem (str): What is wrong with it.
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f'checkpoint {path}: {problem}')

    def __reduce__(self):
        # Exceptions pickle their args; ours take (path, problem).
        return type(self), (self.path, self.problem)


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The checkpoint file does not exist (also a ``FileNotFoundError``, as
    mmengine's loader raised)."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """The checkpoint needs globals outside torch's ``weights_only``
    allow-list (also a ``pickle.UnpicklingError``, as torch raised).

    Args:
        path (str): The checkpoint file.
        problem (str): What is wrong with it.
        globals_ (list[str], optional): The disallowed globals.
    """

    def __init__(self, path: str, problem: str,
                 globals_: list[str] | None = None) -> None:
        super().__init__(path, problem)
        self.globals = list(globals_ or [])

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.globals)


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's state dict does not fit the model.

    Args:
        path (str): The checkpoint file.
        problem (str): What is wrong with it.
        missing (list[str], optional): Model keys the checkpoint lacks.
        unexpected (list[str], optional): Checkpoint keys the model lacks.
        mismatched (list[tuple], optional): ``(key, checkpoint shape,
            model shape)`` of the entries whose shapes differ.
    """

    def __init__(self,
                 path: str,
                 problem: str,
                 missing: list[str] | None = None,
                 unexpected: list[str] | None = None,
                 mismatched: list[tuple] | None = None) -> None:
        super().__init__(path, problem)
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])

    def __reduce__(self):
        return type(self), (self.path, self.problem, self.missing,
                            self.unexpected, self.mismatched)
