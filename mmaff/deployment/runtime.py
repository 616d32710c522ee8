"""Run an exported ONNX model in onnxruntime or OpenVINO behind one call."""
import numpy as np

#: Runtimes :class:`RuntimeSession` can load an ONNX file into.
BACKENDS = ('onnxruntime', 'openvino')

_PACKAGES = {'onnxruntime': 'onnxruntime', 'openvino': 'openvino'}


def _import_backend(backend: str):
    if backend not in BACKENDS:
        raise ValueError(
            f'Unknown backend {backend!r}; choose from {BACKENDS}')
    package = _PACKAGES[backend]
    try:
        return __import__(package)
    except ImportError as e:
        raise RuntimeError(
            f'The {backend} backend needs the {package!r} package, which is '
            f'not installed: pip install {package} (see '
            'requirements/optional.txt)') from e


class RuntimeSession:
    """An ONNX model loaded for CPU inference in onnxruntime or OpenVINO.

    Both runtimes are used the same way: feed NumPy arrays in the order of
    the model's inputs, get NumPy arrays back in the order of its outputs.

    Example:
        >>> session = RuntimeSession('model.onnx', 'openvino', threads=2)
        >>> logits, = session(np.zeros(session.input_shapes[0], np.float32))

    Args:
        path (str): The ONNX file.
        backend (str): One of :data:`BACKENDS`. Defaults to
            ``'onnxruntime'``.
        threads (int, optional): Intra-op threads (onnxruntime's
            ``intra_op_num_threads``, OpenVINO's ``INFERENCE_NUM_THREADS``).
            Defaults to None (the runtime's own choice).

    Raises:
        ValueError: If ``backend`` is not one of :data:`BACKENDS`.
        RuntimeError: If the backend's package is not installed.
    """

    def __init__(self,
                 path: str,
                 backend: str = 'onnxruntime',
                 threads: int | None = None) -> None:
        module = _import_backend(backend)
        self.path = path
        self.backend = backend
        self.threads = threads
        if backend == 'onnxruntime':
            self._init_onnxruntime(module, path, threads)
        else:
            self._init_openvino(module, path, threads)

    def _init_onnxruntime(self, ort, path: str, threads: int | None) -> None:
        options = ort.SessionOptions()
        # By default the pool's threads spin-wait after each run, taking the
        # cores from whatever runs next in the process (PyTorch, another
        # session): in a mixed process that costs more than it saves.
        options.add_session_config_entry('session.intra_op.allow_spinning',
                                         '0')
        if threads is not None:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            path, options, providers=['CPUExecutionProvider'])
        inputs = self._session.get_inputs()
        self.input_names = [i.name for i in inputs]
        # onnxruntime names dynamic dims by their symbol (str) or gives None
        self.input_shapes = [tuple(i.shape) for i in inputs]
        self.output_names = [o.name for o in self._session.get_outputs()]

    def _init_openvino(self, ov, path: str, threads: int | None) -> None:
        core = ov.Core()
        model = core.read_model(path)
        # CPUs with bf16 or fp16 units otherwise run in that precision by
        # default (errors of ~1e-2 on AFFNet's logits): keep ONNX's fp32.
        config = {'INFERENCE_PRECISION_HINT': 'f32'}
        if threads is not None:
            config['INFERENCE_NUM_THREADS'] = threads
        self._compiled = core.compile_model(model, 'CPU', config)
        self._request = self._compiled.create_infer_request()
        self.input_names = [
            i.get_any_name() for i in self._compiled.inputs
        ]
        self.input_shapes = [
            tuple(d.get_length() if d.is_static else None
                  for d in i.get_partial_shape())
            for i in self._compiled.inputs
        ]
        self.output_names = [
            o.get_any_name() for o in self._compiled.outputs
        ]

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run the model.

        Args:
            *arrays (np.ndarray): One array per input, in the order of
                :attr:`input_names`.

        Returns:
            list[np.ndarray]: The outputs in the ONNX output order.
        """
        if len(arrays) != len(self.input_names):
            raise ValueError(
                f'{self.path} takes {len(self.input_names)} input(s) '
                f'{self.input_names}, got {len(arrays)}')
        if self.backend == 'onnxruntime':
            return self._session.run(
                None, dict(zip(self.input_names, arrays)))
        # share_inputs/share_outputs avoid copies; the copy below keeps the
        # results valid after the next call reuses the request's buffers
        results = self._request.infer(list(arrays), share_inputs=True,
                                      share_outputs=True)
        return [np.array(results[o]) for o in self._compiled.outputs]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}({self.path!r}, {self.backend!r}, '
                f'threads={self.threads})')
