"""Inference backends for a verified bundle: onnxruntime and OpenVINO (fp32 or INT8), no torch.

Each backend is imported only when chosen: ``import openvino`` alone costs more than the whole
onnxruntime cold start, so a PC running onnxruntime never pays it. ``auto`` measures the available
backends once per bundle and machine and remembers the faster one in the user data folder.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from zsmed.errors import BackendUnavailableError, BundleError
from zsmed.log import get_logger
from zsmed.runtime import format as fmt
from zsmed.runtime.bundle import Bundle

log = get_logger(__name__)

BACKENDS = ("onnxruntime", "openvino", "openvino-int8")
BACKEND_CHOICES = ("auto", *BACKENDS)
THREADS_ENV = "ZSMED_NUM_THREADS"
CHOICE_FILE = "runtime_backends.json"


class Backend(Protocol):
    name: str

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, S, S) float32 -> (logits (B, C), embedding (B, D)), both float32."""
        ...


def available_cpus() -> int:
    """CPUs this process may use (affinity and cgroup quota), or ``ZSMED_NUM_THREADS``.

    Mirrors ``zsmed.encoders.threads`` without importing it (that package pulls torch)."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        count = len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    try:
        quota = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota and quota[0] != "max":
            count = min(count, max(1, math.ceil(int(quota[0]) / int(quota[1]))))
    except (OSError, ValueError, IndexError):
        pass
    return max(1, count)


CACHE_ENV = "ZSMED_NO_MODEL_CACHE"
CACHE_KEY_FILE = "ort-cache.key"  # in the user data folder, never beside the cache entries
MAC_SUFFIX = ".mac"


def cache_mac_key() -> bytes:
    """The per-profile key that authenticates optimised-model cache entries (0600, made on first use)."""
    from zsmed.paths import read_or_create_secret, user_data_dir

    return read_or_create_secret(user_data_dir() / CACHE_KEY_FILE)


def cache_mac(key: bytes, bundle_id: str, cache: Path, data: bytes) -> str:
    """HMAC-SHA256 binding a cached graph to the verified bundle it was optimised from."""
    import hashlib
    import hmac

    mac = hmac.new(key, f"zsmed-ort-cache|{bundle_id}|{cache.stem}|".encode(), hashlib.sha256)
    mac.update(data)
    return mac.hexdigest()


def _optimized_cache_path(bundle: Bundle, threads: int, ort_version: str) -> Path | None:
    """Where this machine keeps the onnxruntime-optimised graph of a bundle (None: caching off).

    Full graph optimisation (fusions, NCHWc layouts for this CPU's vector width) is most of
    onnxruntime's session start-up; the result is specific to the CPU and the onnxruntime version,
    so it is cached per bundle, CPU, thread count and version in the user's own cache folder.

    Each entry is authenticated by an HMAC-SHA256 over (bundle id, cache key, the cached bytes)
    under a per-profile key kept outside the cache folder (``cache_mac_key``): whoever can write to
    the cache folder cannot plant a model that is run in place of the verified bundle's.

    Never for a bundle whose signature was verified: a signed bundle must run exactly the signed
    model, so such bundles pay the graph optimisation at every start instead."""
    from zsmed.runtime.trust import env_bool

    if env_bool(CACHE_ENV) or bundle.signed_by is not None:
        return None
    import hashlib

    from zsmed.paths import user_cache_dir

    key = hashlib.sha256(f"{bundle.bundle_id}|{_cpu_model()}|{threads}|{ort_version}".encode()).hexdigest()[:32]
    try:
        return user_cache_dir() / "ort-optimized" / f"{key}.ort"
    except OSError as exc:  # a locked-down profile: start without the cache, every time
        log.info("no optimised-model cache (%s)", exc)
        return None


class OnnxRuntimeBackend:
    name = "onnxruntime"

    def __init__(self, bundle: Bundle, threads: int | None = None, use_cache: bool = True) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendUnavailableError("onnxruntime is not installed (pip install zsmed[runtime])") from exc
        threads = threads or available_cpus()
        options = self._fresh_options(ort, threads)
        cache = _optimized_cache_path(bundle, threads, ort.__version__) if use_cache else None
        mac_key = b""
        if cache is not None:
            try:
                mac_key = cache_mac_key()
            except (OSError, ValueError) as exc:  # no key, no cache: never trust an unauthenticated entry
                log.info("no optimised-model cache (its key: %s)", exc)
                cache = None
        self.session: Any = None
        self.from_cache = False  # whether this session was loaded from an authenticated cache entry
        if cache is not None and cache.is_file():
            try:
                self.session = self._from_cache(ort, options, cache, mac_key, bundle.bundle_id)
                self.from_cache = True
                log.info("loaded the optimised model from the cache %s", cache)
            except Exception as exc:  # a damaged or planted entry: delete it, rebuild from the verified bundle
                # An entry with no authentication code at all is what an older zsmed left (or a plant
                # as harmless as any other, since it is rebuilt): said quietly, not on every upgrade.
                unauthenticated = isinstance(exc, FileNotFoundError) and not cache.with_suffix(MAC_SUFFIX).exists()
                (log.info if unauthenticated else log.warning)(
                    "ignoring the optimised-model cache %s (%s); rebuilding it from the bundle", cache, exc)
                for stale in (cache, cache.with_suffix(MAC_SUFFIX), cache.with_suffix(".sha256")):
                    stale.unlink(missing_ok=True)
                options = self._fresh_options(ort, threads)
        if self.session is None:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if cache is not None:
                try:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    options.optimized_model_filepath = str(cache.with_suffix(".tmp.ort"))
                    options.add_session_config_entry("session.save_model_format", "ORT")
                except OSError:
                    cache = None
            # The ONNX graph keeps its weights as external data inside the IR's model.bin (one copy
            # of the weights for both backends); hand onnxruntime the verified bytes from memory.
            weights = np.frombuffer(bundle.files[fmt.IR_BIN], dtype=np.uint8)
            # onnxruntime may keep pointing into this buffer (no copy on CPU): hold it as long
            # as the session lives.
            self._weights = weights
            options.add_external_initializers_from_files_in_memory([fmt.IR_BIN], [weights], [weights.nbytes])
            try:
                self.session = ort.InferenceSession(
                    bundle.files[fmt.ONNX], sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented types
                raise BundleError(f"onnxruntime cannot load the model ({exc})", path=bundle.path) from exc
            if cache is not None:
                self._commit_cache(cache, mac_key, bundle.bundle_id)
        self._outputs = [fmt.OUTPUT_LOGITS, fmt.OUTPUT_EMBEDDING]

    @staticmethod
    def _fresh_options(ort: Any, threads: int) -> Any:
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        return options

    @staticmethod
    def _from_cache(ort: Any, options: Any, cache: Path, key: bytes, bundle_id: str) -> Any:
        import hmac

        data = cache.read_bytes()
        recorded = cache.with_suffix(MAC_SUFFIX).read_text(encoding="ascii").strip()
        if not hmac.compare_digest(cache_mac(key, bundle_id, cache, data), recorded):
            raise ValueError("its authentication code does not match: not written by this profile for this bundle")
        # Already optimised for this CPU: loading it skips the graph passes entirely.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _commit_cache(cache: Path, key: bytes, bundle_id: str) -> None:
        tmp = cache.with_suffix(".tmp.ort")
        try:
            mac = cache_mac(key, bundle_id, cache, tmp.read_bytes())
            cache.with_suffix(MAC_SUFFIX).write_text(mac + "\n", encoding="ascii")
            tmp.replace(cache)
            cache.with_suffix(".sha256").unlink(missing_ok=True)  # an older release's unkeyed sidecar
        except OSError as exc:  # caching is an optimisation only
            log.info("cannot cache the optimised model (%s)", exc)
            tmp.unlink(missing_ok=True)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, embedding = self.session.run(self._outputs, {fmt.INPUT_NAME: batch})
        return np.asarray(logits, dtype=np.float32), np.asarray(embedding, dtype=np.float32)


def read_ir(core: Any, bundle: Bundle, int8: bool = False) -> Any:
    """The bundle's OpenVINO model (fp32 IR, or the INT8 one), read from the verified bytes in memory."""
    xml_name, bin_name = (fmt.INT8_XML, fmt.INT8_BIN) if int8 else (fmt.IR_XML, fmt.IR_BIN)
    import openvino as ov

    weights = ov.Tensor(np.frombuffer(bundle.files[bin_name], dtype=np.uint8).copy())
    return core.read_model(bundle.files[xml_name].decode(), weights)


class OpenVinoBackend:
    def __init__(self, bundle: Bundle, int8: bool = False, threads: int | None = None, hint: str = "LATENCY") -> None:
        self.name = "openvino-int8" if int8 else "openvino"
        try:
            import openvino as ov
        except ImportError as exc:
            raise BackendUnavailableError("OpenVINO is not installed (pip install zsmed[runtime])") from exc
        if (fmt.INT8_XML if int8 else fmt.IR_XML) not in bundle.files:
            raise BackendUnavailableError("this bundle holds no INT8 model (exported without --int8, or refused)")
        core = ov.Core()
        try:
            model = read_ir(core, bundle, int8)
            config = {
                "PERFORMANCE_HINT": hint,
                "INFERENCE_NUM_THREADS": threads or available_cpus(),
                # Never let the plugin silently drop to bf16/fp16 on CPUs that have it: parity.
                "INFERENCE_PRECISION_HINT": "f32",
            }
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long messages
            raise BundleError(f"OpenVINO cannot load the model ({str(exc).splitlines()[0]})", path=bundle.path) from exc
        self.request = self.compiled.create_infer_request()
        self._logits = self.compiled.output(fmt.OUTPUT_LOGITS)
        self._embedding = self.compiled.output(fmt.OUTPUT_EMBEDDING)

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = self.request.infer({fmt.INPUT_NAME: batch})
        return (
            np.array(result[self._logits], dtype=np.float32),
            np.array(result[self._embedding], dtype=np.float32),
        )


def create_backend(bundle: Bundle, name: str, threads: int | None = None, hint: str = "LATENCY") -> Backend:
    if name == "onnxruntime":
        return OnnxRuntimeBackend(bundle, threads)
    if name == "openvino":
        return OpenVinoBackend(bundle, int8=False, threads=threads, hint=hint)
    if name == "openvino-int8":
        return OpenVinoBackend(bundle, int8=True, threads=threads, hint=hint)
    raise BackendUnavailableError(f"unknown backend '{name}'; choose one of {', '.join(BACKEND_CHOICES)}")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _choice_key(bundle: Bundle, threads: int) -> str:
    return f"{bundle.bundle_id}|{_cpu_model()}|{threads}t"


def _choice_path() -> Path:
    from zsmed.paths import user_data_dir

    return user_data_dir() / CHOICE_FILE


def _remembered(bundle: Bundle, threads: int) -> dict[str, Any] | None:
    try:
        entry = json.loads(_choice_path().read_text()).get(_choice_key(bundle, threads))
    except (OSError, ValueError, AttributeError, TypeError):
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("ms_per_image"), dict):
        return None
    return entry


def _pick(entry: dict[str, Any], n_images: int | None) -> str | None:
    """Fastest for this job: start-up plus ``n_images`` predictions (per image alone if unknown).

    A single image is dominated by start-up (importing OpenVINO alone costs more than a whole
    onnxruntime start), a folder by the per-image time."""
    per_image: dict[str, float] = entry["ms_per_image"]
    load: dict[str, float] = entry.get("load_s") or {}
    usable = [name for name in per_image if name in BACKENDS]
    if not usable:
        return None
    if n_images is None or not all(name in load for name in usable):
        return min(usable, key=lambda name: per_image[name])
    return min(usable, key=lambda name: load[name] + n_images * per_image[name] / 1000.0)


def remembered_choice(bundle: Bundle, threads: int, n_images: int | None = None) -> str | None:
    entry = _remembered(bundle, threads)
    return _pick(entry, n_images) if entry else None


def _remember(bundle: Bundle, threads: int, entry: dict[str, Any]) -> None:
    try:
        path = _choice_path()
    except OSError as exc:  # remembering is an optimisation; a read-only profile still predicts
        log.warning("cannot remember the backend choice (%s)", exc)
        return
    try:
        choices = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(choices, dict):
            choices = {}
    except (OSError, ValueError):
        choices = {}
    choices[_choice_key(bundle, threads)] = entry
    try:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(choices, indent=2, sort_keys=True))
        tmp.replace(path)
    except OSError as exc:  # remembering is an optimisation; a read-only profile still predicts
        log.warning("cannot remember the backend choice (%s)", exc)


def time_backend(backend: Backend, size: int, batch: int = 1, repeats: int = 10) -> float:
    """Median milliseconds per image over ``repeats`` runs, after two warm-up runs."""
    pixels = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    for _ in range(2):
        backend.run(pixels)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.run(pixels)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0 / batch


def open_backend(
    bundle: Bundle, name: str = "auto", threads: int | None = None, n_images: int | None = None
) -> Backend:
    """The named backend, or for ``auto`` the faster one for a job of ``n_images``, from start-up
    and per-image times measured once per bundle, CPU and thread count (at the first load)."""
    threads = threads or available_cpus()
    if name != "auto":
        return create_backend(bundle, name, threads)
    remembered = remembered_choice(bundle, threads, n_images)
    if remembered is not None:
        try:
            return create_backend(bundle, remembered, threads)
        except BackendUnavailableError:
            pass  # uninstalled since: measure again
    # INT8 is never picked automatically: its accuracy is checked at export on the support set
    # only, and on CPUs without VNNI it drifts (see docs/bench/runtime.md).
    import importlib

    candidates: dict[str, Backend] = {}
    per_image: dict[str, float] = {}
    load_s: dict[str, float] = {}
    size = bundle.preprocess.size
    for candidate, module in (("onnxruntime", "onnxruntime"), ("openvino", "openvino")):
        try:
            start = time.perf_counter()
            importlib.import_module(module)
            imported = time.perf_counter() - start
            backend = create_backend(bundle, candidate, threads)
            if candidate == "onnxruntime":
                # The first session optimises the graph and caches it; later starts load the cache.
                start = time.perf_counter()
                backend = create_backend(bundle, candidate, threads)
            created = time.perf_counter() - start
        except (BackendUnavailableError, ImportError) as exc:
            log.info("backend %s unavailable: %s", candidate, exc)
            continue
        candidates[candidate] = backend
        load_s[candidate] = round(imported + created, 3)
        per_image[candidate] = round(time_backend(backend, size), 3)
    if not candidates:
        raise BackendUnavailableError("neither onnxruntime nor OpenVINO is installed (pip install zsmed[runtime])")
    entry = {"ms_per_image": per_image, "load_s": load_s}
    best = _pick(entry, n_images) or next(iter(candidates))
    log.info("backend auto: %s (ms per image at batch 1 %s, start-up s %s)", best, per_image, load_s)
    _remember(bundle, threads, entry)
    return candidates[best]
