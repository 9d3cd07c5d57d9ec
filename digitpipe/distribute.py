"""Training on several devices or machines: ``train.distribute`` = none | mirrored | multi_worker.

- ``none``: one device, Keras' own ``fit`` (see :mod:`digitpipe.training`).
- ``mirrored``: :class:`tf.distribute.MirroredStrategy` over every local GPU; on a machine without GPUs,
  ``train.replicas`` logical CPU devices (how the multi-device path is tested on any machine).
- ``multi_worker``: :class:`tf.distribute.MultiWorkerMirroredStrategy`, one process per machine, each told
  its place by the ``TF_CONFIG`` variable (what Kubeflow's TFJob and other launchers set). Without
  ``TF_CONFIG`` the train stage starts ``train.replicas`` local workers itself (:mod:`digitpipe.launch`).

Keras 3's ``fit`` does not run under ``MultiWorkerMirroredStrategy`` with this TensorFlow, so both
distributed kinds run :func:`fit`, a custom loop that keeps the single-device recipe: the same model with
its augmentation, the same optimiser and schedule, the same loss, and the same Keras callbacks (the weights
``train.keep`` picks, early stopping, the LR plateau, DVCLive). The global batch is ``train.batch_size``, split over
the replicas. Batch norm runs synchronised (statistics over the whole global batch, as on one device), so
every replica ends with bit-identical weights; :func:`fingerprint` lets each worker show it.

A peer that never joins, or stops answering, ends training with one line after :data:`PEER_TIMEOUT_ENV`
seconds (default :data:`PEER_TIMEOUT`), never a hang: see :mod:`digitpipe.watchdog`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digitpipe.errors import DigitpipeError
from digitpipe.watchdog import ENV as PEER_TIMEOUT_ENV
from digitpipe.watchdog import Watchdog, reachable

PEER_TIMEOUT = 300.0  # seconds a worker waits for its peers to join, or for the next step to finish
JOBS = ("chief", "worker")  # the TF_CONFIG job types synchronous data-parallel training uses


@dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker cluster, as ``TF_CONFIG`` gives it."""

    jobs: dict[str, list[str]]  # job type -> "host:port" of each task
    task_type: str
    task_index: int

    @property
    def tasks(self) -> list[tuple[str, int, str]]:
        """Every task of the cluster (chief first): ``(type, index, address)``."""
        return [(job, i, addr) for job in JOBS for i, addr in enumerate(self.jobs.get(job, []))]

    @property
    def size(self) -> int:
        return len(self.tasks)

    @property
    def is_chief(self) -> bool:
        """The chief writes the outputs: the ``chief`` task, or worker 0 when the cluster has no chief."""
        return self.task_type == "chief" or ("chief" not in self.jobs and self.task_index == 0)

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.task_index}"

    def peers(self) -> list[tuple[str, str]]:
        """``(name, address)`` of every other task."""
        return [(f"{job} {i}", addr) for job, i, addr in self.tasks if (job, i) != (self.task_type, self.task_index)]


# TensorFlow's errors when a peer goes away mid-run (killed, its machine down, paused past the heartbeat), or
# when this task cannot start its own server: told in one line, not as a traceback of TensorFlow's internals
LOST_PEER_ERRORS = ("UnavailableError", "AbortedError", "CancelledError", "DeadlineExceededError", "UnknownError")
# TensorFlow's words when the workers' collective group cannot form because their TF_CONFIGs list clusters of
# different sizes (an InternalError, raised at the first all-reduce)
GROUP_SIZES = re.compile(r"joining a group with size ?(\d+), but that group has size ?(\d+)")


def cluster_failure(cluster: Cluster, err: BaseException, began: bool = True) -> str | None:
    """The one line for a multi-worker run that TensorFlow stopped with ``err``, naming the peers that cannot be
    reached now, or the other cluster size a worker's TF_CONFIG gives; ``None`` for an error that is not about the
    cluster (raised as it is). ``began``: whether training had begun (its first epoch), which says whether a peer
    went away mid-run or never trained at all (it refused, or was stopped while waiting for a worker of its own
    cluster that this one's does not list)."""
    text = " ".join(str(getattr(err, "message", err)).split())
    if sizes := GROUP_SIZES.search(text):
        other = sizes[2] if int(sizes[1]) == cluster.size else sizes[1]
        return (f"{cluster.name}: the workers' TF_CONFIG clusters differ: this one lists {cluster.size} tasks, another "
                f"worker's {other}; every machine needs the same \"cluster\" (only \"task\" differs); start train on "
                "every machine again")
    if type(err).__name__ not in LOST_PEER_ERRORS:
        return None
    if "Could not start gRPC server" in text or "Failed to add port" in text:
        return port_taken(cluster)
    gone = [f"{name} ({address})" for name, address in cluster.peers() if not reachable(address)]
    who = f"{', '.join(gone)} cannot be reached" if gone else "a peer stopped answering"
    if not began:
        return (f"{cluster.name}: {who} before training began, so the run stopped and wrote no model; its own "
                "message says why (a TF_CONFIG that lists another cluster than this one's, or params.yaml refused "
                f"there); start train on every machine again (TensorFlow's {type(err).__name__})")
    return (f"{cluster.name}: {who} during training, so the run stopped and wrote no model; start train on every "
            f"machine again (TensorFlow's {type(err).__name__}; its log above says more)")


def own_address(cluster: Cluster) -> str:
    """This task's ``host:port`` in the cluster."""
    return dict(((job, i), addr) for job, i, addr in cluster.tasks)[(cluster.task_type, cluster.task_index)]


def port_taken(cluster: Cluster) -> str:
    """The one line for a port of this task that another program holds."""
    own = own_address(cluster)
    return (f"{cluster.name}: cannot listen on port {own.rpartition(':')[2]} ({own} in TF_CONFIG; TensorFlow listens "
            "on every address of this machine): another program holds it; free it or give this task another port")


def port_held(cluster: Cluster) -> str | None:
    """:func:`port_taken`'s line when another program listens on this task's port now, else ``None``: asked
    before TensorFlow tries, whose own failure comes with lines of its log. A port left in TIME_WAIT by an
    earlier run is free to TensorFlow, which reuses addresses, and so it is here."""
    port = int(own_address(cluster).rpartition(":")[2])
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("", port))
        except OSError:
            return port_taken(cluster)
    return None


def split_address(address: object) -> tuple[str, int] | None:
    """``"host:port"`` as ``(host, port)``, or ``None`` when it is not one."""
    if not isinstance(address, str):
        return None
    host, sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


def parse_tf_config(text: str) -> Cluster:
    """Read ``TF_CONFIG``; anything that is not a usable chief/worker cluster is refused in one line."""
    def bad(why: str) -> DigitpipeError:
        return DigitpipeError(f"TF_CONFIG {why} (expected e.g. "
                              '{"cluster": {"worker": ["host1:port", "host2:port"]}, "task": {"type": "worker", '
                              '"index": 0}})')

    try:
        config = json.loads(text)
    except ValueError as err:
        raise bad(f"is not valid JSON: {err}") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise bad('has no "cluster" mapping')
    cluster, task = config["cluster"], config.get("task")
    jobs: dict[str, list[str]] = {}
    for job, addresses in cluster.items():
        if job not in JOBS:
            raise bad(f'names job "{job}"; multi_worker training uses only: ' + ", ".join(JOBS))
        if not isinstance(addresses, list) or not addresses:
            raise bad(f'job "{job}" must list at least one "host:port"')
        for address in addresses:
            if split_address(address) is None:
                raise bad(f'job "{job}" has {address!r}, not a "host:port" address')
        jobs[job] = list(addresses)
    if len(jobs.get("chief", [])) > 1:
        raise bad('job "chief" must have exactly one task')
    if "worker" not in jobs and "chief" not in jobs:
        raise bad('has no "worker" job')
    if not isinstance(task, dict) or task.get("type") not in jobs:
        raise bad(f'"task" must name its "type", one of the cluster\'s jobs: {", ".join(jobs)}')
    index = task.get("index", 0)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[task["type"]]):
        raise bad(f'"task" index {index!r} is not one of 0..{len(jobs[task["type"]]) - 1}')
    every = [addr for addrs in jobs.values() for addr in addrs]
    if len(set(every)) != len(every):
        raise bad("lists one address twice")
    return Cluster(jobs, task["type"], index)


def cluster_from_env() -> Cluster | None:
    """The cluster ``TF_CONFIG`` describes, or ``None`` when it is unset or empty."""
    text = os.environ.get("TF_CONFIG", "").strip()
    return parse_tf_config(text) if text else None


def tf_config(addresses: list[str], index: int) -> str:
    """``TF_CONFIG`` for worker ``index`` of a cluster of workers at ``addresses`` (worker 0 is the chief)."""
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})


def start_watchdog(cluster: Cluster, children: list[int] = ()) -> Watchdog:
    """The watcher of this worker (see :mod:`digitpipe.watchdog`), told the peers to name if it stalls."""
    return Watchdog(peer_timeout(), cluster.name, cluster.peers(), children)


def peer_timeout() -> float:
    """Seconds to wait for peers, from :data:`PEER_TIMEOUT_ENV` (default :data:`PEER_TIMEOUT`)."""
    raw = os.environ.get(PEER_TIMEOUT_ENV, "").strip()
    if not raw:
        return PEER_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 1 <= value <= 86_400:
        raise DigitpipeError(f"{PEER_TIMEOUT_ENV}={raw!r} is invalid: must be a number of seconds >= 1 and <= 86400")
    return value


def logical_cpus(count: int) -> None:
    """Split the CPU into ``count`` logical devices (before TensorFlow's runtime starts)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError as err:  # the runtime already started: only the devices it has
        raise DigitpipeError(f"train.distribute=mirrored: cannot split the CPU into {count} devices ({err})") from None


def make_strategy(kind: str, replicas: int, cluster: Cluster | None, timeout: float):
    """The :mod:`tf.distribute` strategy for ``train.distribute`` (``None`` for ``none``)."""
    import tensorflow as tf

    if kind == "none":
        return None
    if kind == "mirrored":
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy()
        logical_cpus(replicas)
        return tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    if cluster is None:
        raise DigitpipeError("train.distribute=multi_worker needs TF_CONFIG (or train.replicas local workers)")
    if held := port_held(cluster):
        raise DigitpipeError(held)
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def sync_batch_norm(model, on: bool = True) -> None:
    """Compute batch-norm statistics over the global batch (all replicas), as one device does."""
    import keras

    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = on


def fingerprint(weights: Iterable[np.ndarray]) -> str:
    """A short digest of a model's weights: equal on every worker when they agree bit for bit."""
    digest = hashlib.sha256()
    for w in weights:
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()[:16]


def sharded(dataset, strategy):
    """``dataset`` split between the replicas by element (the data is in memory, not in files)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))


def fit(model, strategy, train_ds, val_ds, epochs: int, callbacks: list, label_smoothing: float,
        watchdog: Watchdog | None = None) -> dict[str, list[float]]:
    """Keras ``fit`` for a model built and compiled under ``strategy``: per epoch, one pass over ``train_ds``
    (batches of the global batch size), then ``val_ds``, then the callbacks with the logs ``fit`` gives
    them (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``). Returns the history."""
    import keras
    import tensorflow as tf

    loss_fn = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)  # variables made now, not inside the tf.function
    sync_batch_norm(model)
    train_dist, val_dist = sharded(train_ds, strategy), sharded(val_ds, strategy)

    def sums(y, probs, weight=None):
        """Each image's loss (times its class weight, ``train.class_weight``, as Keras' ``fit`` weighs it; the
        accuracy stays unweighted there too), the hits and the count."""
        per_example = loss_fn(y, probs) if weight is None else loss_fn(y, probs) * weight
        hits = tf.cast(tf.equal(tf.argmax(y, -1), tf.argmax(probs, -1)), tf.float32)
        return per_example, tf.reduce_sum(hits), tf.cast(tf.shape(y)[0], tf.float32)

    def reduced(values):
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in values]

    @tf.function
    def train_step(batch):
        def step(x, y, weight=None):
            with tf.GradientTape() as tape:
                probs = model(x, training=True)
                per_example, hits, count = sums(y, probs, weight)
                loss = tf.nn.compute_average_loss(per_example)  # over the global batch, however it is split
                if model.losses:
                    loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
            grads = tape.gradient(loss, model.trainable_variables)
            model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            return tf.reduce_sum(per_example), hits, count
        return reduced(strategy.run(step, args=batch))

    @tf.function
    def val_step(batch):
        def step(x, y):
            per_example, hits, count = sums(y, model(x, training=False))
            return tf.reduce_sum(per_example), hits, count
        return reduced(strategy.run(step, args=batch))

    def run_epoch(step_fn, data, what: str) -> tuple[float, float]:
        total = np.zeros(3)
        for batch in data:
            total += [float(v) for v in step_fn(batch)]
            if watchdog:
                watchdog.progress(what)
        return total[0] / total[2], total[1] / total[2]

    history = keras.callbacks.History()
    calls = keras.callbacks.CallbackList([*callbacks, history], model=model, epochs=epochs)
    model.stop_training = False
    calls.on_train_begin()
    if watchdog:
        watchdog.began = True
    for epoch in range(epochs):
        calls.on_epoch_begin(epoch)
        loss, accuracy = run_epoch(train_step, train_dist, f"training epoch {epoch + 1}")
        val_loss, val_accuracy = run_epoch(val_step, val_dist, f"validating epoch {epoch + 1}")
        logs = {"loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}
        calls.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    calls.on_train_end()
    sync_batch_norm(model, on=False)  # the saved model is an ordinary one
    return history.history


def agreement_token(*parts: object) -> int:
    """A number in [1, 2**20] that stands for ``parts`` (params, arrays, text): equal inputs, equal tokens."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part).tobytes() if isinstance(part, np.ndarray)
                      else json.dumps(part, sort_keys=True).encode())
    return int.from_bytes(digest.digest()[:4], "big") % 2**20 + 1


def code_identity(stage: str = "train", pipeline: Path = Path("dvc.yaml")) -> list[str]:
    """What a worker's code is: the SHA-256 of each Python file the ``stage`` declares as a dependency in
    ``pipeline`` (its own script and every module it imports, as the stage-deps test keeps them; read from the
    project, where ``python -m stages.train`` imports them from), and the TensorFlow, Keras and NumPy versions.
    Two workers that differ here would train different recipes into one model: a changed dropout rate gives
    every tensor its old shape, so nothing else would notice."""
    import keras
    import tensorflow as tf
    import yaml

    from digitpipe.files import content_hash

    versions = [f"tensorflow {tf.__version__}", f"keras {keras.__version__}", f"numpy {np.__version__}"]
    try:
        deps = yaml.safe_load(pipeline.read_text(encoding="utf-8"))["stages"][stage]["deps"]
        files = sorted(str(dep) for dep in deps if str(dep).endswith(".py"))
        return versions + [f"{name} {content_hash((pipeline.parent / name).read_bytes())}" for name in files]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:  # not the project's layout: unlike any worker's
        return versions + [f"{pipeline}: {type(err).__name__}"]


def differing(strategy, tokens: dict[str, int]) -> list[str]:
    """The names of ``tokens`` (each one a number in [1, 2**20] per replica, from :func:`agreement_token`) on which
    the replicas do not all agree, in one all-reduce: sum(t) ** 2 == n * sum(t ** 2) only when every t is equal."""
    import tensorflow as tf

    def values() -> tuple[tf.Tensor, tf.Tensor]:
        t = tf.constant([float(v) for v in tokens.values()], tf.float64)
        return t, t * t

    @tf.function
    def sums() -> list[tf.Tensor]:
        return [strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in strategy.run(values)]

    total, squares = (v.numpy() for v in sums())
    n = strategy.num_replicas_in_sync
    return [name for name, t, q in zip(tokens, total, squares, strict=True) if t * t != n * q]


def barrier(strategy, watchdog: Watchdog | None = None, doing: str = "waiting for the other workers") -> None:
    """Return once every worker has reached this point (one tiny all-reduce)."""
    import tensorflow as tf

    if strategy is None:
        return
    if watchdog:
        watchdog.progress(doing)

    def one() -> tf.Tensor:
        return tf.constant(1.0)

    @tf.function
    def all_reduce() -> tf.Tensor:
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(one), axis=None)

    all_reduce()
