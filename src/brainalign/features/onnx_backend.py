"""Layer activations through ONNX Runtime: the same hooks, 2–3× faster on a CPU.

PyTorch's eager CPU path runs EfficientNet-lite0 far from the GEMM peak: each batch norm, ReLU6
and explicit zero padding is a separate pass over memory, and depthwise convolutions on NCHW
tensors are reordered on every call. ONNX Runtime folds the batch norms into the convolutions,
fuses the clips and pads, and keeps its own blocked layout across layers.

:class:`OnnxTaps` traces ``module`` once with the requested layers' outputs (spatially averaged or
full) as the graph's outputs, so hooks on any named module work as in the eager path, and runs
the graph with as many threads as torch has (``torch.get_num_threads()``, the task's share).
Only ``onnxruntime`` and ``onnx`` (the exporter's serialiser) are needed: the ``fast`` extra.
"""

from __future__ import annotations

import io
import warnings

import numpy as np

from brainalign.errors import InputError

#: opset of the exported graphs (ONNX Runtime ≥ 1.12 runs it)
OPSET = 17


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ONNX exporter's ``onnx`` package are installed."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def pool_positions(out):
    """Mean over the positions of one layer's output (a torch tensor): every axis after the
    channels of (n, C, H, W …) maps → (n, C); the tokens of a transformer's (n, tokens, dim)
    sequence → (n, dim). 2-D outputs are returned as they are."""
    if out.ndim == 3:
        return out.mean(dim=1)
    return out.mean(dim=tuple(range(2, out.ndim))) if out.ndim > 3 else out


def _tap_modules(module, hooked: dict, pooling):
    """A module whose forward returns the outputs of ``hooked`` modules, in call order."""
    import torch

    class Taps(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = module
            self.counts: dict[str, int] = {}

        def forward(self, x):
            got: dict[str, list] = {name: [] for name in hooked}

            def hook_for(name):
                def hook(_mod, _inp, out):
                    out = (out[0] if isinstance(out, tuple | list) else out).float()
                    # pooled or copied here, as the eager hook reads it: a later in-place op
                    # (ReLU(inplace=True) after a hooked batch norm) must not reach the output
                    if pooling == "mean" and out.ndim > 2:
                        out = pool_positions(out)
                    else:
                        out = out.clone()
                    got[name].append(out)

                return hook

            handles = [m.register_forward_hook(hook_for(n)) for n, m in hooked.items()]
            try:
                self.net(x)
            finally:
                for h in handles:
                    h.remove()
            outs = []
            for name, values in got.items():
                self.counts[name] = len(values)  # a recurrent module is called T times
                outs.extend(values)
            return tuple(outs)

    return Taps().eval()


class OnnxTaps:
    """``module``'s activations at ``hooked`` layers, computed by ONNX Runtime.

    Parameters
    ----------
    module : torch.nn.Module
        In eval mode, on the CPU.
    hooked : dict of str -> torch.nn.Module
        Layer name → submodule of ``module``.
    pooling : {"mean", None}
        As :func:`brainalign.features.vision.activations`.
    example : torch.Tensor
        One input batch ``(n, C, H, W)``: its shape, not its values, is traced (on random values
        and ``n + 1`` images); the graph accepts any batch size with the same ``(C, H, W)``.
    threads : int, optional
        Intra-op threads (default: ``torch.get_num_threads()``).

    Raises
    ------
    InputError
        If ONNX Runtime or ``onnx`` is not installed.
    Exception
        Whatever the exporter raises for a model it cannot trace (callers fall back to torch).
    """

    def __init__(self, module, hooked: dict, pooling, example, threads: int | None = None):
        if not onnx_available():
            raise InputError(
                "backend: 'onnxruntime' needs the packages onnxruntime and onnx "
                "(`pip install brainalign[fast]`); or use backend='torch'"
            )
        import onnxruntime as ort
        import torch

        taps = _tap_modules(module, hooked, pooling)
        # traced on other values and another batch size than the batch the caller checks the
        # graph on: a value or a batch size frozen into the trace then shows as a difference
        generator = torch.Generator().manual_seed(0)
        probe = torch.randn((len(example) + 1, *example.shape[1:]), generator=generator)
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            # the TorchScript exporter warns that it is the legacy one (it needs no onnxscript);
            # a TracerWarning (Python control flow on values) means the trace may be wrong
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", torch.jit.TracerWarning)
            names = [f"out{i}" for i in range(len(taps(probe[:1])))]
            torch.onnx.export(
                taps, (probe,), buf, dynamo=False, opset_version=OPSET,
                input_names=["x"], output_names=names,
                dynamic_axes={"x": {0: "n"}, **{n: {0: "n"} for n in names}},
            )  # fmt: skip
        self.counts = dict(taps.counts)
        self.shape = tuple(example.shape[1:])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or torch.get_num_threads())
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # idle threads sleep instead of spinning: tasks share the cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(
            buf.getvalue(), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, x) -> dict[str, list[np.ndarray]]:
        """``{layer: [output per call]}`` (float32 arrays) for one batch ``x`` (torch or numpy)."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        if tuple(x.shape[1:]) != self.shape:
            raise InputError(
                f"images: this graph was traced for inputs of shape (n, {self.shape}), "
                f"got {x.shape}"
            )
        outs = iter(self.session.run(None, {"x": x}))
        return {name: [next(outs) for _ in range(k)] for name, k in self.counts.items()}


__all__ = ["OPSET", "OnnxTaps", "onnx_available"]
