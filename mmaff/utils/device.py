"""Checking the name of the device to run on."""
import re

import torch


class DeviceError(ValueError):
    """A device name torch cannot run on.

    The message is ``device <name>: <problem>``; callers that word it their
    own way (a command-line option) find both on the error.

    Args:
        device (str): The name as given.
        problem (str): What is wrong with it.
    """

    def __init__(self, device: str, problem: str) -> None:
        self.device = device
        self.problem = problem
        super().__init__(f'device {device}: {problem}')

    def __reduce__(self):
        # Exceptions pickle their args; ours take (device, problem).
        return type(self), (self.device, self.problem)


def pick_device(device: str | None) -> str:
    """Check a device name: ``cpu``, ``cuda`` or ``cuda:N``.

    Args:
        device (str, optional): The name; None picks ``cuda`` when torch
            sees a GPU, else ``cpu``.

    Returns:
        str: The device.

    Raises:
        DeviceError: For another name, a CUDA device torch does not see, or
            an index beyond the visible devices.
    """
    if device is None:
        return 'cuda' if torch.cuda.is_available() else 'cpu'
    if device == 'cpu':
        return device
    match = re.fullmatch(r'cuda(?::(\d+))?', device)
    if match is None:
        raise DeviceError(device, 'use cpu, cuda or cuda:N')
    if not torch.cuda.is_available():
        raise DeviceError(device, 'torch sees no CUDA device')
    count = torch.cuda.device_count()
    if match.group(1) is not None and int(match.group(1)) >= count:
        raise DeviceError(device, f'torch sees {count} CUDA device(s), '
                          f'cuda:0 to cuda:{count - 1}')
    return device
